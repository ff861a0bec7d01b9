"""``fallom.session``: the session object users hold, and what it reaches.

It sits above tracing because its methods reach the experiments
(``get_model``), the provider wrappers and the integrations; the spans inside
its block see only its frozen :class:`~fallom.tracing._session.SessionContext`.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import types
from contextvars import Token
from types import MappingProxyType, TracebackType
from typing import Any, Iterable, Mapping, Optional, TypeVar

from fallom import models
from fallom.experiments import _stores
from fallom.infra._guard import report_internal_error
from fallom.integrations.models import wrap_generic
from fallom.protocol._capture import to_jsonable
from fallom.providers import anthropic, google, litellm, openai
from fallom.providers._proxy import ClientProxy, wrap_client
from fallom.tracing._context import CURRENT_SESSION, enter, leave
from fallom.tracing._session import SessionContext

__all__ = ["FallomSession", "session"]

C = TypeVar("C")


def _required(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} is required and must be a non-empty string, got {value!r}")
    return value


class FallomSession:
    """A session: a context manager (sync or async) or a plain object.

    Inside ``with session:`` every span started, in any function called,
    carries its config key, session id, customer id, metadata and tags; an
    inner session wins inside its own block. Its ``wrap_*`` clients carry it
    wherever they are called, block or not.

    Args:
        config_key: the Fallom config this session's model A/B test and traces belong
            to: a non-empty string.
        session_id: the conversation or request the spans are grouped by; it also
            picks the A/B bucket. A non-empty string.
        customer_id: the end user, for targeting and filtering; None or "": none.
        metadata: JSON-able details recorded on each span (a copy, taken now; values
            JSON cannot hold are stored as text); None: none.
        tags: labels recorded on each span, each kept as ``str(tag)``; None: none.

    Raises:
        ValueError: ``config_key`` or ``session_id`` is missing or not a non-empty
            string, ``customer_id`` is not a string, ``metadata`` is not a mapping,
            or ``tags`` is one string rather than several. Entering and leaving the
            block never raise.
    """

    __slots__ = ("_context",)

    def __init__(self, config_key: str, session_id: str, customer_id: Optional[str] = None,
                 metadata: Optional[Mapping[str, Any]] = None,
                 tags: Optional[Iterable[str]] = None) -> None:
        _required(config_key, "config_key")
        _required(session_id, "session_id")
        if customer_id is not None and not isinstance(customer_id, str):
            raise ValueError(f"customer_id must be a string, got {customer_id!r}")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise ValueError(f"metadata must be a mapping, got {type(metadata).__name__}")
        if isinstance(tags, str):
            raise ValueError("tags must be a list of strings, not one string")
        meta = to_jsonable(dict(metadata)) if metadata else {}
        self._context = SessionContext(
            config_key=config_key,
            session_id=session_id,
            customer_id=customer_id or None,
            metadata=MappingProxyType(meta),
            tags=tuple(str(tag) for tag in tags or ()),
        )

    @classmethod
    def _unbound(cls) -> FallomSession:
        """A session object bound to none: the clients it wraps take the session current
        where each call is made (0.2.x's ``trace.wrap_*`` without a ``session_ctx``)."""
        unbound = cls.__new__(cls)
        unbound._context = None  # type: ignore[assignment]
        return unbound

    @property
    def config_key(self) -> str:
        return self._context.config_key

    @property
    def session_id(self) -> str:
        return self._context.session_id

    @property
    def customer_id(self) -> Optional[str]:
        return self._context.customer_id

    def get_context(self) -> SessionContext:
        """The session's identity as a frozen value, safe to hand to other threads.

        Returns:
            The :class:`SessionContext` its spans carry. Never raises.
        """
        return self._context

    def __repr__(self) -> str:
        return f"<FallomSession config_key={self.config_key!r} session_id={self.session_id!r}>"

    def __enter__(self) -> FallomSession:
        enter(self, CURRENT_SESSION.set(self._context))  # per entry, in the context
        return self

    def __exit__(self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        token: Optional[Token[Optional[SessionContext]]] = leave(self)
        if token is None:
            return
        try:
            CURRENT_SESSION.reset(token)
        except ValueError as err:  # left in another context than it was entered in
            report_internal_error(err, "session exit")

    async def get_model(self, config_key: Optional[str] = None, fallback: Optional[str] = None,
                        version: Optional[int] = None, *,
                        context: Optional[Mapping[str, Any]] = None) -> str:
        """This session's model, as :func:`fallom.models.get` picks it; awaitable, as in
        fallom 0.2.x and the TypeScript SDK (``fallom.models.get`` is the synchronous path).

        Answered at once from memory; only a cold cache (or an uncached pinned version)
        is waited for, on a worker thread, so the event loop never blocks.

        Args:
            config_key: the config to read; None: the session's own.
            fallback: the model to use when the config is not available; None: none.
            version: a pinned config version; None: the latest.
            context: what targeting rules match on, beside the session's
                ``customer_id``; None: nothing more.

        Returns:
            The model name, the same for this session id every time.

        Raises:
            ValueError: no config (or that ``version``) is available and no
                ``fallback`` was given, or ``version`` is not a whole number.
        """
        call = functools.partial(models.get, config_key or self.config_key, self.session_id,
                                 version, fallback, self.customer_id, context)
        experiments = _stores.current()
        if version is None and experiments is not None and experiments.configs.loaded:
            return call()
        return await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(contextvars.copy_context().run, call))

    # -- provider clients ------------------------------------------------------
    def wrap_openai(self, client: C) -> C:
        """Trace ``OpenAI``, ``AsyncOpenAI``, ``AzureOpenAI`` or any OpenAI-compatible client.

        Args:
            client: the client; it is not changed, and a traced one is unwrapped first.

        Returns:
            A proxy of ``client`` that records each call in this session and returns or
            raises exactly what the client does.

        Raises:
            TypeError: ``client`` has no ``chat.completions.create``.
        """
        return wrap_client(client, openai.PROVIDER, self._context)

    def wrap_anthropic(self, client: C) -> C:
        """Trace ``Anthropic`` / ``AsyncAnthropic``: ``messages.create`` and ``messages.stream``.

        Args:
            client: the client; it is not changed, and a traced one is unwrapped first.

        Returns:
            A proxy of ``client`` that records each call in this session and returns or
            raises exactly what the client does.

        Raises:
            TypeError: ``client`` has no ``messages.create``.
        """
        return wrap_client(client, anthropic.PROVIDER, self._context)

    def wrap_google_ai(self, model_or_client: C) -> C:
        """Trace a google-genai ``Client`` or a google-generativeai ``GenerativeModel``.

        Args:
            model_or_client: the client or model; it is not changed, and a traced one is
                unwrapped first.

        Returns:
            A proxy of it that records each call in this session and returns or raises
            exactly what the original does.

        Raises:
            TypeError: it has neither ``models.generate_content`` nor
                ``generate_content``.
        """
        target: Any = model_or_client
        while isinstance(target, ClientProxy):
            target = target.__wrapped__
        if hasattr(target, "generate_content") and not hasattr(target, "models"):
            model = getattr(target, "model_name", None)
            return wrap_client(model_or_client, google.GENERATIVE_MODEL, self._context, model)
        return wrap_client(model_or_client, google.PROVIDER, self._context)

    def wrap_litellm(self, module: C) -> C:
        """Trace ``litellm.completion`` / ``acompletion`` (pass the ``litellm`` module).

        Args:
            module: the ``litellm`` module; it is not changed.

        Returns:
            A proxy of the module whose calls are recorded in this session and return
            or raise exactly what litellm's do.

        Raises:
            TypeError: ``module`` has no ``completion``.
        """
        return wrap_client(module, litellm.PROVIDER, self._context)

    def langchain_callback(self) -> Any:
        """A LangChain callback handler recording runs under this session.

        Returns:
            A new ``FallomCallbackHandler``: pass it in ``callbacks=[...]``.

        Raises:
            ImportError: ``langchain-core`` is not installed.
        """
        from fallom.integrations.langchain import FallomCallbackHandler

        return FallomCallbackHandler(self._context)

    def trace_model(self, model: C) -> C:
        """Trace a model object, PostHog style, whatever its kind.

        Args:
            model: a provider client (OpenAI, Anthropic, Google), the litellm module, a
                LangChain chat model, or any object with a generation method
                (``generate``, ``complete``, ``chat``...).

        Returns:
            What the matching ``wrap_*`` returns; for a LangChain model, the model
            with this session's callback handler bound (``with_config``).

        Raises:
            TypeError: ``model`` is none of those.
        """
        target: Any = model
        while isinstance(target, ClientProxy):
            target = target.__wrapped__
        module = target.__name__ if isinstance(target, types.ModuleType) \
            else type(target).__module__
        if module.split(".")[0] == "litellm" and hasattr(target, "completion"):
            return self.wrap_litellm(model)
        if module.startswith("openai"):
            return self.wrap_openai(model)
        if module.startswith("anthropic"):
            return self.wrap_anthropic(model)
        if module.startswith(("google.genai", "google.generativeai")):
            return self.wrap_google_ai(model)
        if any(k.__module__.startswith("langchain_core.language_models")
               for k in type(target).__mro__):
            return target.with_config(  # type: ignore[no-any-return]
                callbacks=[self.langchain_callback()])
        return wrap_generic(model, self._context)  # type: ignore[no-any-return]

    async def __aenter__(self) -> FallomSession:
        return self.__enter__()

    async def __aexit__(self, exc_type: Optional[type[BaseException]],
                        exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        self.__exit__(exc_type, exc, tb)


def session(config_key: str, session_id: str, customer_id: Optional[str] = None,
            metadata: Optional[Mapping[str, Any]] = None,
            tags: Optional[Iterable[str]] = None) -> FallomSession:
    """Open a session: ``with fallom.session(...):``, or hold it and wrap clients.

    Args:
        config_key: the Fallom config this session belongs to: a non-empty string.
        session_id: the conversation or request the spans are grouped by, and the
            A/B bucket: a non-empty string.
        customer_id: the end user, for targeting and filtering; None: none.
        metadata: JSON-able details recorded on each span; None: none.
        tags: labels recorded on each span; None: none.

    Returns:
        A :class:`FallomSession`; nothing is active until its block is entered.

    Raises:
        ValueError: as :class:`FallomSession` says, for a missing or wrong value.
    """
    return FallomSession(config_key, session_id, customer_id=customer_id,
                         metadata=metadata, tags=tags)
