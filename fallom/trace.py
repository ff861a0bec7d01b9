"""``fallom.trace``: the tracing module of fallom 0.2.x, on this SDK's own machinery.

A program written for 0.2.7 (``trace.set_session``, ``trace.span``,
``trace.wrap_openai``, ``trace.send_trace``...) runs unchanged. Nothing here is a
second pipeline: settings are the runtime's, sessions are the context's current
session, clients are the provider proxies, records go to the runtime's
processors and custom metrics to the background reporter, so a program mixing
this module with ``fallom.session`` gets one trace, delivered once.

Where this SDK deliberately differs from 0.2.7 (no key: local mode, not an
error; a second ``init`` reconfigures), the function's docstring says so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, TypeVar

from fallom import _sdk
from fallom._sdk import shutdown
from fallom._session import FallomSession, session
from fallom.infra._guard import report_internal_error, report_misuse
from fallom.protocol._capture import Limits, to_jsonable
from fallom.protocol._wire import RAW_REQUEST, RAW_RESPONSE
from fallom.tracing import _runtime
from fallom.tracing._context import CURRENT_SESSION
from fallom.tracing._foreign import FOREIGN, hand_on
from fallom.tracing._session import SessionContext

if TYPE_CHECKING:
    from fallom.experiments._stores import Experiments
    from fallom.tracing._runtime import Runtime

__all__ = [
    "FallomCallbackHandler", "FallomSession", "SessionContext", "SessionOptions",
    "TraceContext", "TraceData", "WaterfallTimings", "callback_handler_from_session",
    "clear_session", "get_api_key", "get_base_url", "get_session", "init", "is_debug_mode",
    "is_initialized", "send_trace", "send_trace_sync", "session", "set_session",
    "should_capture_content", "shutdown", "span", "wrap_anthropic", "wrap_google_ai",
    "wrap_openai",
]

C = TypeVar("C")

# 0.2.7's messages, word for word: programs and their tests may match on them
_NOT_INITIALIZED = "Fallom not initialized. Call fallom.init() first."
_NO_SESSION = ("No session context. Either call set_session() first, "
               "or pass config_key and session_id explicitly.")
_CONTENT = (RAW_REQUEST, RAW_RESPONSE)  # what capture_content=False keeps in the process


# -- 0.2.7's types -----------------------------------------------------------------------
@dataclass
class TraceContext:
    """Trace context for linking spans together, as 0.2.7 declares it."""

    trace_id: str
    parent_span_id: Optional[str] = None


@dataclass
class WaterfallTimings:
    """Timing breakdown in milliseconds from the request's start, as 0.2.7 declares it."""

    request_start: int = 0
    request_end: int = 0
    response_end: int = 0
    first_token_time: Optional[int] = None
    steps: Optional[List[Dict[str, Any]]] = None


@dataclass
class SessionOptions:
    """Options for creating a session, as 0.2.7 declares them."""

    config_key: str
    session_id: str
    customer_id: Optional[str] = None
    metadata: Optional[Dict[str, Any]] = None
    tags: Optional[List[str]] = None


@dataclass
class TraceData:
    """One span's record as 0.2.7's wrappers build it: docs/design.md §3.3's fields.

    The required fields come first, then the optional ones, as in 0.2.7, so the
    positional order of its constructor is kept too.
    """

    config_key: str
    session_id: str
    trace_id: str
    span_id: str
    name: str
    start_time: str
    end_time: str
    duration_ms: int
    status: str
    customer_id: Optional[str] = None
    parent_span_id: Optional[str] = None
    kind: Optional[str] = None
    model: Optional[str] = None
    error_message: Optional[str] = None
    time_to_first_token_ms: Optional[int] = None
    is_streaming: Optional[bool] = None
    metadata: Optional[Dict[str, Any]] = None
    tags: Optional[List[str]] = None
    attributes: Optional[Dict[str, Any]] = None
    prompt_key: Optional[str] = None
    prompt_version: Optional[int] = None
    prompt_ab_test_key: Optional[str] = None
    prompt_variant_index: Optional[int] = None

    def to_dict(self) -> Dict[str, Any]:
        """The wire record 0.2.7 sends: every required field, the optional ones when set.

        Returns:
            A new dict in the field order above; an optional field that is None is left
            out (an empty string or list is kept, as 0.2.7 keeps it).
        """
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.default is dataclasses.MISSING or getattr(self, f.name) is not None}


# -- setup and the runtime's settings ----------------------------------------------------
def init(api_key: Optional[str] = None, base_url: Optional[str] = None,
         capture_content: bool = True, debug: bool = False) -> None:
    """Start tracing, as 0.2.7's ``fallom.trace.init`` does; every other setting is kept.

    Unlike 0.2.7, there is no error without a key: nothing is sent (local mode),
    and a later call changes what it is given instead of being ignored.
    ``FALLOM_CAPTURE_CONTENT=false`` wins over the default ``capture_content=True``,
    as in 0.2.7.

    Args:
        api_key: the Fallom API key; None: as configured, else ``FALLOM_API_KEY``.
        base_url: where traces are sent (``traces_url``); None: as configured, else
            ``FALLOM_TRACES_URL``, else https://traces.fallom.com.
        capture_content: False: no prompt or completion text leaves the process; True:
            as configured (on by default).
        debug: True: print each finished trace and fallom's debug log; False: as
            configured (``FALLOM_DEBUG``).

    Raises:
        ValueError: a wrong value, naming the parameter.
    """
    _sdk.init_part(api_key=api_key, traces_url=base_url,
                   capture_content=None if capture_content else False,
                   debug=True if debug else None)


def is_initialized() -> bool:
    """Whether ``init()`` ran and ``shutdown()`` has not since.

    Returns:
        True between ``init()`` and ``shutdown()``, local mode included.
    """
    return _runtime.STATE.initialized


def should_capture_content() -> bool:
    """Whether prompts and completions are recorded (``capture_content``).

    Returns:
        The setting of the last ``init()`` (True before any).
    """
    return _runtime.STATE.settings.capture_content


def get_api_key() -> Optional[str]:
    """The API key traces are sent with.

    Returns:
        The key of the last ``init()``; None before it, or in local mode.
    """
    return _runtime.STATE.settings.api_key


def get_base_url() -> str:
    """Where traces are sent (the ``traces_url`` setting).

    Returns:
        The URL of the last ``init()``, without a trailing slash; the default
        https://traces.fallom.com before it.
    """
    return _runtime.STATE.settings.traces_url


def is_debug_mode() -> bool:
    """Whether debug output is on.

    Returns:
        The ``debug`` setting of the last ``init()`` (False before any).
    """
    return _runtime.STATE.settings.debug


# -- records built by hand ---------------------------------------------------------------
def send_trace(trace: TraceData) -> None:
    """Hand a record built by hand to fallom's delivery, in the background.

    It goes where fallom's own spans go (the batch exporter, your exporters, the
    test kit), through ``init(redact=...)``; with ``capture_content`` off its
    request and response attributes are left out. Before ``init()`` or after
    ``shutdown()`` it is dropped and counted. Never waits on the network.

    Args:
        trace: the record; its ``to_dict()`` is what is sent.

    Never raises: a failure is logged.
    """
    try:
        _hand_on(trace, _runtime.STATE)
    except Exception as exc:
        report_internal_error(exc, "trace.send_trace")


def send_trace_sync(trace: TraceData) -> None:
    """:func:`send_trace`, then wait until it is delivered (:func:`fallom.flush`).

    Args:
        trace: the record; its ``to_dict()`` is what is sent.

    Never raises; waits at most 5 seconds, as 0.2.7's request did.
    """
    send_trace(trace)
    _sdk.flush()


def _hand_on(trace: TraceData, rt: Runtime) -> None:
    """``trace``'s record, taken now, to ``rt``'s processors (and its redact hook)."""
    if not isinstance(trace, TraceData):
        report_misuse("trace.send_trace", f"expected a TraceData, got {type(trace).__name__}")
        return
    if not rt.initialized and not rt.test_processors:
        FOREIGN.drop("shutdown")
        return
    record = _record_of(trace, rt)
    parent = record.get("parent_span_id")
    hand_on(record, rt, _id_number(record.get("trace_id")),
            None if parent is None else _id_number(parent))


def _record_of(trace: TraceData, rt: Runtime) -> Dict[str, Any]:
    """A JSON-safe copy of ``trace.to_dict()``, taken now; the request cap cuts it later."""
    limits = Limits(rt.settings.max_batch_bytes, rt.limits.max_items, rt.limits.max_depth)
    record: Dict[str, Any] = to_jsonable(trace.to_dict(), limits)
    attributes = record.get("attributes")
    if not rt.capture and isinstance(attributes, dict):
        record["attributes"] = {k: v for k, v in attributes.items() if k not in _CONTENT}
    return record


def _id_number(text: Any) -> int:
    """A hex id as the number the processors group spans by (any other text hashed)."""
    try:
        return int(str(text), 16)
    except ValueError:
        return hash(str(text)) & ((1 << 128) - 1)


# -- the legacy session, per thread and per asyncio task ---------------------------------
def set_session(config_key: str, session_id: str, customer_id: Optional[str] = None,
                metadata: Optional[Dict[str, Any]] = None,
                tags: Optional[List[str]] = None) -> None:
    """Make this the current session of this thread or asyncio task (0.2.7's legacy API).

    Every span started afterwards in this context carries it: ``@fallom.trace_llm``
    functions, ``fallom.span`` blocks and clients wrapped here without a session.
    An open ``with fallom.session(...)`` block restores its outer session on exit.

    Args:
        config_key: the Fallom config the spans belong to: a non-empty string.
        session_id: the conversation or request they are grouped by: a non-empty string.
        customer_id: the end user; None or "": none.
        metadata: JSON-able details recorded on each span; None: none.
        tags: labels recorded on each span; None: none.

    Never raises, as in 0.2.7: a wrong value is logged and leaves no session current.
    """
    try:
        context: Optional[SessionContext] = FallomSession(
            config_key, session_id, customer_id, metadata, tags).get_context()
    except ValueError:
        report_misuse("trace.set_session", "config_key and session_id must be non-empty "
                      "strings, customer_id a string, metadata a mapping and tags a list; "
                      "no session is current now")
        context = None
    CURRENT_SESSION.set(context)


def get_session() -> Optional[Dict[str, Any]]:
    """The current session of this thread or asyncio task, in 0.2.7's shape.

    Returns:
        ``{"config_key", "session_id"}`` plus ``customer_id``, ``metadata`` and
        ``tags`` when set; None when no session is current. A ``with
        fallom.session(...)`` block's session counts as current too.
    """
    context = CURRENT_SESSION.get()
    if context is None:
        return None
    found: Dict[str, Any] = {"config_key": context.config_key,
                             "session_id": context.session_id}
    if context.customer_id:
        found["customer_id"] = context.customer_id
    if context.metadata:
        found["metadata"] = dict(context.metadata)
    if context.tags:
        found["tags"] = list(context.tags)
    return found


def clear_session() -> None:
    """No session is current in this thread or asyncio task any more (0.2.7's legacy API)."""
    CURRENT_SESSION.set(None)


def span(data: Dict[str, Any], config_key: Optional[str] = None,
         session_id: Optional[str] = None) -> None:
    """Record custom business metrics for a session; the latest value per field wins.

    ``POST {traces_url}/spans`` with ``{"config_key", "session_id", "data"}`` and the
    key, queued for fallom's background reporter: the caller never waits. Nothing
    is sent in local mode (no key) or with ``tracing`` off.

    Args:
        data: the metrics, e.g. ``{"outlier_score": 0.8}``; copied now, as JSON.
        config_key: the config; None: the current session's.
        session_id: the session; None: the current session's.

    Raises:
        RuntimeError: fallom is not initialised (0.2.7's message).
        ValueError: neither the arguments nor a current session give a config key
            and a session id (0.2.7's message).
    """
    rt = _runtime.STATE
    if not rt.initialized:
        raise RuntimeError(_NOT_INITIALIZED)
    current = CURRENT_SESSION.get()
    config_key = config_key or (current.config_key if current is not None else None)
    session_id = session_id or (current.session_id if current is not None else None)
    if not config_key or not session_id:
        raise ValueError(_NO_SESSION)
    experiments: Optional[Experiments] = rt.experiments
    if experiments is None or not rt.settings.tracing:
        return
    try:
        payload = to_jsonable({"config_key": config_key, "session_id": session_id,
                               "data": data}, rt.limits)
        experiments.fetcher.reporter.post(f"{rt.settings.traces_url}/spans", payload)
    except Exception as exc:
        report_internal_error(exc, "trace.span")


# -- clients and LangChain ---------------------------------------------------------------
def _bound(session_ctx: Any) -> FallomSession:
    """The session object whose ``wrap_*`` bind ``session_ctx``; for None, one bound to no
    session, so each call takes the session current where it is made."""
    if session_ctx is None:
        return FallomSession._unbound()
    return FallomSession(session_ctx.config_key, session_ctx.session_id,
                         getattr(session_ctx, "customer_id", None),
                         getattr(session_ctx, "metadata", None), getattr(session_ctx, "tags", None))


def wrap_openai(client: C, session_ctx: Optional[SessionContext] = None) -> C:
    """Trace an OpenAI client (``OpenAI``, ``AsyncOpenAI``, Azure, compatible ones).

    Unlike 0.2.7, the client is not changed: use the returned one.

    Args:
        client: the client.
        session_ctx: the session its calls carry (``session.get_context()``, or 0.2.7's
            ``SessionContext``); None: the session current where each call is made.

    Returns:
        A proxy of ``client`` that passes for it and returns or raises what it does.

    Raises:
        TypeError: ``client`` has no ``chat.completions.create``.
        ValueError: ``session_ctx`` holds a wrong value, as :func:`fallom.session` says.
    """
    return _bound(session_ctx).wrap_openai(client)


def wrap_anthropic(client: C, session_ctx: Optional[SessionContext] = None) -> C:
    """Trace an Anthropic client (``Anthropic``, ``AsyncAnthropic``).

    Unlike 0.2.7, the client is not changed: use the returned one.

    Args:
        client: the client.
        session_ctx: the session its calls carry; None: the session current where each
            call is made.

    Returns:
        A proxy of ``client`` that passes for it and returns or raises what it does.

    Raises:
        TypeError: ``client`` has no ``messages.create``.
        ValueError: ``session_ctx`` holds a wrong value, as :func:`fallom.session` says.
    """
    return _bound(session_ctx).wrap_anthropic(client)


def wrap_google_ai(model: C, session_ctx: Optional[SessionContext] = None) -> C:
    """Trace a google-generativeai ``GenerativeModel`` or a google-genai ``Client``.

    Unlike 0.2.7, the model is not changed: use the returned one.

    Args:
        model: the model or client.
        session_ctx: the session its calls carry; None: the session current where each
            call is made.

    Returns:
        A proxy of ``model`` that passes for it and returns or raises what it does.

    Raises:
        TypeError: it has neither ``generate_content`` nor ``models.generate_content``.
        ValueError: ``session_ctx`` holds a wrong value, as :func:`fallom.session` says.
    """
    return _bound(session_ctx).wrap_google_ai(model)


class FallomCallbackHandler:
    """0.2.7's LangChain callback handler: records runs under the session it is given.

    ``FallomCallbackHandler(config_key, session_id, ...)`` returns the handler of
    ``fallom.integrations.langchain``, as ``fallom.session(...).langchain_callback()``
    does; langchain-core is imported only then.

    Args:
        config_key: the Fallom config: a non-empty string.
        session_id: the session its runs are grouped by: a non-empty string.
        customer_id: the end user; None: none.
        metadata: JSON-able details recorded on each span; None: none.
        tags: labels recorded on each span; None: none.

    Raises:
        ImportError: langchain-core is not installed.
        ValueError: a wrong value, as :func:`fallom.session` says.
    """

    def __new__(cls, config_key: str, session_id: str, customer_id: Optional[str] = None,
                metadata: Optional[Dict[str, Any]] = None,
                tags: Optional[List[str]] = None) -> Any:
        return FallomSession(config_key, session_id, customer_id, metadata,
                             tags).langchain_callback()


def callback_handler_from_session(session: FallomSession) -> Any:
    """A LangChain callback handler recording runs under ``session``.

    Args:
        session: a :class:`FallomSession`.

    Returns:
        ``session.langchain_callback()``: pass it in ``callbacks=[...]``.

    Raises:
        ImportError: langchain-core is not installed.
    """
    return session.langchain_callback()
