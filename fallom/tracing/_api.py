"""The tracing entry points: ``trace_llm``, ``span`` and ``current_span``."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, TypeVar, Union, overload

from fallom.tracing import _context
from fallom.tracing._context import CURRENT_SPAN
from fallom.tracing._instrument import CallOptions, begin, fail, instrument, release
from fallom.tracing._span import NOOP_SPAN, NoOpSpan, Span

__all__ = ["current_span", "span", "trace_llm"]

F = TypeVar("F", bound=Callable[..., Any])


@overload
def trace_llm(func: F) -> F: ...


@overload
def trace_llm(
    func: None = None, *, name: Optional[str] = None, model: Optional[str] = None,
    provider: Optional[str] = None, capture_input: bool = True, capture_output: bool = True,
    extractor: Optional[Callable[[Any], Any]] = None,
) -> Callable[[F], F]: ...


def trace_llm(
    func: Optional[F] = None, *, name: Optional[str] = None, model: Optional[str] = None,
    provider: Optional[str] = None, capture_input: bool = True, capture_output: bool = True,
    extractor: Optional[Callable[[Any], Any]] = None,
) -> Union[F, Callable[[F], F]]:
    """Trace each call of an LLM helper as an ``llm`` span.

    Works bare (``@trace_llm``) or with options (``@trace_llm(model=...)``), on
    functions, methods, static and class methods, coroutines, generators and async
    generators. The bound arguments become the input and the return value the
    output; known SDK responses also give model and token counts (see
    ``fallom.extractors``). While tracing is off the function is called directly.

    Args:
        func: the function, when used bare; None (the default) when options are given.
        name: the span's name; None: the function's qualified name (``Bot.ask``).
        model: the model to record when the result does not name one; None: none.
        provider: recorded as ``gen_ai.provider.name`` unless the result's extractor
            names one; None: only what the extractor names.
        capture_input: record the bound arguments as the input (default True).
        capture_output: record the return value as the output (default True).
        extractor: a ``(result) -> dict`` of record fields, as ``fallom.extractors``
            takes; None: the extractor registered for the result's type. One that
            raises or returns a non-mapping is reported once and ignored.

    Returns:
        The traced function (``func`` given), else a decorator that makes one. Each
        call returns or raises exactly what the undecorated one would.

    Raises:
        ValueError: ``name``, ``model`` or ``provider`` is not a string, at decoration.
        TypeError: ``extractor`` is not callable, at decoration. A traced call itself
            never raises because of fallom: a failure is logged once and dropped.
    """

    def decorate(target: F) -> F:
        opts = CallOptions(target, name=name, kind="llm", capture_input=capture_input,
                           capture_output=capture_output, extractor=extractor,
                           model=model, provider=provider)
        return instrument(target, opts)  # type: ignore[no-any-return]

    if func is None:
        return decorate
    return decorate(func)


def _block_options(name: str, kind: str,
                   attributes: Optional[Mapping[str, Any]]) -> CallOptions:
    return CallOptions(None, name=name, kind=kind, capture_input=False, capture_output=False,
                       attributes=attributes)


_BLOCKS: Dict[Tuple[str, str], CallOptions] = {}
_CACHED_NAMES, _CACHED_NAME_CHARS = 1024, 256  # the cache holds at most ~256K characters
_NO_KWARGS: Dict[str, Any] = {}


class span:  # noqa: N801 - used like a function, as OpenTelemetry's start_as_current_span
    """A span around a block (``with`` / ``async with``) or a function (decorator).

    Each ``with`` entry and each decorated call makes a new span, current
    inside the block and ended when it leaves; an exception is recorded on
    the span and propagates unchanged. Entering returns the :class:`Span` (a
    :class:`NoOpSpan` while tracing is off); decorating returns the traced
    function, whose calls return and raise what the function's would.

    Args:
        name: the span's name: a non-empty string.
        kind: what the span stands for (``span``, ``llm``, ``tool``, ``retrieval``,
            ...): a non-empty string; default ``span``.
        attributes: attributes every span made here starts with; None: none.

    Raises:
        ValueError: ``name`` or ``kind`` is not a non-empty string, or
            ``attributes`` is not a mapping. Entering, leaving and decorated calls
            never raise because of fallom.
    """

    __slots__ = ("_opts",)

    def __init__(self, name: str, kind: str = "span",
                 attributes: Optional[Mapping[str, Any]] = None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("span name must be a non-empty string")
        # A long name is made per call, maybe huge: never cached (its record clips it).
        if attributes or type(kind) is not str or len(name) > _CACHED_NAME_CHARS:
            self._opts = _block_options(name, kind, attributes)
            return
        opts = _BLOCKS.get((name, kind))  # a with block usually runs many times
        if opts is None:
            if len(_BLOCKS) >= _CACHED_NAMES:  # names made per call: do not grow without bound
                _BLOCKS.clear()
            opts = _BLOCKS[(name, kind)] = _block_options(name, kind, None)
        self._opts = opts

    def __enter__(self) -> Union[Span, NoOpSpan]:
        span = begin(self._opts, None, (), _NO_KWARGS)
        if span is None:
            return NOOP_SPAN
        span._entry = (self, _context.activate(span))  # per entry, on the entry's own span
        return span

    def __exit__(self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        # The span current in this context is this entry's (with blocks nest; each task
        # and thread has its own context), so concurrent entries never mix.
        current = CURRENT_SPAN.get()
        if current is None:
            return
        entry = current._entry
        if entry is None or entry[0] is not self:
            return
        current._entry = None
        release(entry[1])
        if exc is None:
            current.end()
        else:
            fail(current, exc)

    async def __aenter__(self) -> Union[Span, NoOpSpan]:
        return self.__enter__()

    async def __aexit__(self, exc_type: Optional[type[BaseException]],
                        exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: F) -> F:
        opts = self._opts
        decorated = CallOptions(func, name=opts.name, kind=opts.kind, capture_input=False,
                                capture_output=False, attributes=opts.attributes)
        return instrument(func, decorated)  # type: ignore[no-any-return]


def current_span() -> Union[Span, NoOpSpan]:
    """The span active in this context, to annotate from deep inside it.

    Returns:
        The current :class:`Span`; outside any span (or with tracing off) the shared
        :class:`NoOpSpan`, whose every method does nothing, so callers need no check.
        Never raises.
    """
    active = CURRENT_SPAN.get()
    return active if active is not None else NOOP_SPAN
