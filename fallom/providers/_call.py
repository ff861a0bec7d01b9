"""The one wrapper behind every provider method: sync, async and streaming.

Whether a call is async is decided from what it returns (an awaitable), not
from the method's signature, and its span then covers the await. Streams
come back as :mod:`._stream` proxies; everything else is read by the
endpoint's reader and returned untouched.
"""

from __future__ import annotations

import inspect
from types import TracebackType
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

from fallom.infra._guard import report_internal_error
from fallom.protocol import _names as attr
from fallom.providers._base import Endpoint, ObjectProxy, Provider
from fallom.providers._stream import StreamState, TracedStream, observe_events
from fallom.tracing import _ids, _runtime
from fallom.tracing._instrument import await_within, call_within
from fallom.tracing._span import Span
from fallom.tracing._suppress import SUPPRESSED

if TYPE_CHECKING:
    from fallom.tracing._session import SessionContext

__all__ = ["Binding", "traced_call"]


class Binding:
    """A provider client bound to a session: what every traced call needs to know."""

    __slots__ = ("default_model", "provider", "session")

    def __init__(self, provider: Provider, session: Optional[SessionContext],
                 default_model: Optional[str] = None) -> None:
        self.provider, self.session, self.default_model = provider, session, default_model


def _start(binding: Binding, path: Tuple[str, ...], endpoint: Endpoint, args: Tuple[Any, ...],
           kwargs: Dict[str, Any]) -> Span:
    provider = binding.provider
    # the reference SDKs' operation names (chat.completions.create, messages.create,
    # generateContent...), the provider in gen_ai.provider.name: one name per operation,
    # whichever SDK sent it
    name = endpoint.method or f"{provider.name}.{'.'.join(path)}"  # a model object's own
    span = Span(name, endpoint.kind, None, _runtime.STATE)
    if binding.session is not None:
        span.session = binding.session  # the wrapper's session, whatever the context
    model = kwargs.get("model") or binding.default_model
    if model:
        model = str(model)
        span.model = model[len("models/"):] if model.startswith("models/") else model
    attributes = {attr.PROVIDER: provider.name, attr.OPERATION: endpoint.operation,
                  attr.REQUEST_MODEL: span.model}
    attributes.update(provider.request_attributes(kwargs))
    span.set_attributes({k: v for k, v in attributes.items() if v is not None})
    if endpoint.method:  # a known provider method: its input is the request itself
        span.method = endpoint.method
    if span._capture:
        keys = endpoint.request_keys
        request = {k: kwargs[k] for k in keys if kwargs.get(k) is not None}
        if args and keys:
            request.setdefault(keys[0], args[0])
        if not endpoint.method:
            if keys[0] in request:
                span.set_input(request[keys[0]])
        else:
            if "model" in keys and "model" not in request and span.model:
                request["model"] = span.model
            span.set_input(request)
    return span


def traced_call(binding: Binding, path: Tuple[str, ...], endpoint: Endpoint, wrapped: Any,
                args: Tuple[Any, ...], kwargs: Dict[str, Any], resource: Any = None) -> Any:
    """Call ``wrapped`` under an LLM span; never changes what it returns or raises."""
    if not _runtime.STATE.active or SUPPRESSED.get():
        return wrapped(*args, **kwargs)
    hide = stream = False
    try:
        span = _start(binding, path, endpoint, args, kwargs)
        stream = endpoint.streams(kwargs) and endpoint.accumulator is not None
        if stream:
            kwargs, hide = binding.provider.prepare_stream(endpoint, kwargs, resource)
    except Exception as exc:
        report_internal_error(exc, "provider call start")
        return wrapped(*args, **kwargs)
    result = call_within(span, wrapped, args, kwargs)
    if inspect.isawaitable(result):
        return _awaited(span, endpoint, result, stream, hide)
    return _outcome(span, endpoint, result, stream, hide)


def _restart(span: Span) -> None:
    """The work starts now (an await, a ``with``), not when the call was made."""
    mono = _ids.clock.monotonic_ns()  # moved on its own time base, as its children are
    span.start_ns, span.start_mono = span.start_ns + (mono - span.start_mono), mono


async def _awaited(span: Span, endpoint: Endpoint, awaitable: Any, stream: bool,
                   hide: bool) -> Any:
    _restart(span)
    result = await await_within(span, lambda: awaitable)
    return _outcome(span, endpoint, result, stream, hide)


def _outcome(span: Span, endpoint: Endpoint, result: Any, stream: bool, hide: bool) -> Any:
    """Wrap a stream, or read a response and end the span; ``result`` is kept as is."""
    try:
        if stream and endpoint.accumulator is not None:
            state = StreamState(span, endpoint.accumulator(), hide)
            if (hasattr(result, "__enter__") and not hasattr(result, "__iter__")) or \
                    (hasattr(result, "__aenter__") and not hasattr(result, "__aiter__")):
                return TracedManager(result, state)
            return TracedStream(result, state)
        span.defer_read(endpoint.read, result)
    except Exception as exc:
        report_internal_error(exc, "provider response")
    span.end()
    return result


class TracedManager(ObjectProxy):
    """Anthropic's ``messages.stream(...)``: the span runs from ``__enter__`` to ``__exit__``."""

    def __init__(self, wrapped: Any, state: StreamState) -> None:
        super().__init__(wrapped)
        self._self_state = state

    def __enter__(self) -> Any:
        _restart(self._self_state.span)
        try:
            stream = self.__wrapped__.__enter__()
        except BaseException as exc:
            self._self_state.finish(exc)
            raise
        observe_events(stream, self._self_state)
        return stream

    def __exit__(self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_state.finish(exc)

    async def __aenter__(self) -> Any:
        _restart(self._self_state.span)
        try:
            stream = await self.__wrapped__.__aenter__()
        except BaseException as exc:
            self._self_state.finish(exc)
            raise
        observe_events(stream, self._self_state)
        return stream

    async def __aexit__(self, exc_type: Optional[type[BaseException]],
                        exc: Optional[BaseException], tb: Optional[TracebackType]) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_state.finish(exc)
