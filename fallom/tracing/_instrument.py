"""The one wrapper behind ``@trace_llm`` and ``@span``: sync, async, generators.

The call mode is chosen once, at decoration time. The span logic (``begin``,
``finish``, ``fail``, ``call_within`` / ``await_within``, and ``CallScope``
for ``with`` blocks and generators) is shared by every mode, which branch
only on how they call the user's function.
"""

from __future__ import annotations

import functools
import inspect
import types
from types import TracebackType
from typing import Any, AsyncGenerator, Awaitable, Callable, Generator, Mapping, Optional

import wrapt

from fallom.infra._guard import report_internal_error, report_misuse
from fallom.protocol._capture import SCALAR_TYPES, snapshot
from fallom.protocol._names import HTTP_STATUS
from fallom.tracing import _context, _extract, _runtime
from fallom.tracing._context import CURRENT_SPAN
from fallom.tracing._record import Binder, BoundArgs
from fallom.tracing._runtime import ACTIVE_FLAG
from fallom.tracing._span import SharedAttributes, Span
from fallom.tracing._suppress import SUPPRESSED

_reset = CURRENT_SPAN.reset

__all__ = ["CallOptions", "CallScope", "await_within", "begin", "call_within", "fail", "finish",
           "instrument", "release", "span_name"]


def span_name(func: Any) -> str:
    """``__qualname__`` without ``<locals>`` parts: ``Bot.ask``, ``plain``."""
    func = getattr(func, "__func__", func)  # staticmethod/classmethod lack a qualname on 3.9
    qualname = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or "call"
    return str(qualname).replace(".<locals>", "")


class CallOptions:
    """What a decoration site decided, fixed at decoration time."""

    __slots__ = ("attributes", "binder", "capture_input", "capture_output", "extractor",
                 "kind", "model", "name")

    def __init__(self, func: Any, *, name: Optional[str], kind: str, capture_input: bool,
                 capture_output: bool, extractor: Optional[Callable[[Any], Any]] = None,
                 model: Optional[str] = None, provider: Optional[str] = None,
                 attributes: Optional[Mapping[str, Any]] = None) -> None:
        if extractor is not None and not callable(extractor):
            raise TypeError(f"extractor must be a callable (result) -> dict, got {extractor!r}")
        for label, text in (("name", name), ("model", model), ("provider", provider)):
            if text is not None and not isinstance(text, str):
                raise ValueError(f"{label} must be a string, got {text!r}")
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"kind must be a non-empty string, got {kind!r}")
        if attributes is not None and not isinstance(attributes, Mapping):
            raise ValueError("attributes must be a mapping of names to values, "
                             f"got {type(attributes).__name__}")
        self.name = name or span_name(func)
        self.kind = kind
        self.capture_input = capture_input
        self.capture_output = capture_output
        self.extractor = extractor
        self.model = model
        attrs = dict(attributes or {})
        if model:
            attrs["gen_ai.request.model"] = model
        if provider:
            attrs["gen_ai.provider.name"] = provider
        self.attributes = SharedAttributes(attrs) if attrs else None
        self.binder: Optional[Binder] = None
        if func is not None and capture_input:
            try:
                self.binder = Binder(inspect.signature(getattr(func, "__func__", func)))
            except (TypeError, ValueError):
                pass


def begin(opts: CallOptions, instance: Any, args: tuple[Any, ...],
          kwargs: dict[str, Any]) -> Optional[Span]:
    """Start the span of one call, capturing its arguments; None when off or broken."""
    rt = _runtime.STATE
    if not rt.active or SUPPRESSED.get():
        return None
    try:
        span = Span(opts.name, opts.kind, opts.attributes, rt)
        if opts.model:
            span.model = opts.model
        if (args or kwargs) and opts.capture_input and span._capture:
            limits = rt.limits
            span.input = BoundArgs(
                opts.binder,
                instance is not None,
                tuple([snapshot(a, limits) for a in args]),
                tuple([(k, snapshot(v, limits)) for k, v in kwargs.items()]) if kwargs else None,
            )
        return span
    except Exception as exc:
        report_internal_error(exc, "trace start")
        return None


def finish(span: Span, opts: CallOptions, result: Any) -> Any:
    """Record a call's result and end its span; returns ``result`` untouched."""
    try:
        extractor = opts.extractor
        if extractor is None:
            kind = type(result)
            extractor = _extract.lookup(kind)
            if extractor is not None and kind is not dict:
                # An SDK response does not change after the call: read it off this path.
                span.defer_read(extractor, result, opts.capture_output)
                span.end()
                return result
            fields = extractor(result) if extractor is not None else None
        else:
            fields = _own_fields(extractor, result, opts.name)
        if fields:
            _extract.apply(span, fields, capture_output=opts.capture_output)
        if opts.capture_output and span._capture and (not fields or "output" not in fields):
            # before end(): no freeze check; an immutable scalar is kept as it is
            span.output = result if type(result) in SCALAR_TYPES else snapshot(
                result, span._rt.limits)
    except Exception as exc:
        report_internal_error(exc, "reading the result")
    span.end()
    return result


def _own_fields(extractor: Callable[[Any], Any], result: Any, name: str) -> Any:
    """What the user's ``extractor=`` read, or None when it failed (said, not raised)."""
    try:
        fields = extractor(result)
    except Exception as exc:
        report_misuse(f"the extractor of {name!r}", f"it raised {type(exc).__name__}", exc)
        return None
    if fields is None or isinstance(fields, Mapping):
        return fields
    report_misuse(f"the extractor of {name!r}",
                  f"it must return a dict of record fields or None, got {type(fields).__name__}")
    return None


def fail(span: Span, exc: BaseException) -> None:
    """Record the user's exception (which the caller re-raises) and end the span."""
    try:
        status = getattr(exc, "status_code", None)  # SDK errors carry the HTTP status
        if isinstance(status, int) and not isinstance(status, bool):
            span.set_attribute(HTTP_STATUS, status)
        span.record_exception(exc)
        span.end()
    except Exception as err:
        report_internal_error(err, "trace end")


def release(token: Any) -> None:
    """Make the previous span current again (tolerates leaving in another context).

    The token says how it was made: a pair when OpenTelemetry's context was
    entered too, so ``init(otel_context=...)`` toggled mid-span ends it right.
    """
    try:
        _reset(token)
    except TypeError:  # a pair: made with OpenTelemetry's context entered too
        from fallom.tracing._otel_context import deactivate_pair

        try:
            deactivate_pair(token)
        except ValueError:
            pass
    except ValueError:  # left in another context than it was entered in
        pass


class CallScope:
    """A span made current step by step: ``with`` blocks and generators."""

    __slots__ = ("items", "opts", "span", "token")

    def __init__(self, opts: CallOptions, instance: Any, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> None:
        self.opts = opts
        self.token: Any = None
        self.items: Optional[list[Any]] = None
        self.span = begin(opts, instance, args, kwargs)

    def __enter__(self) -> CallScope:
        if self.span is not None:
            self.token = _context.activate(self.span)
        return self

    def __exit__(self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        token, self.token = self.token, None
        if token is not None:
            release(token)
        if exc is not None:
            self.fail(exc)

    def end(self) -> None:
        """End the span with no result to record (a ``with`` block)."""
        if self.span is not None:
            self.span.end()

    def fail(self, exc: BaseException) -> None:
        span = self.span
        if span is not None:
            if self.items is not None:
                self._record_items(span)
            fail(span, exc)

    # -- streams -------------------------------------------------------------
    def item(self, item: Any) -> None:
        """Note one yielded item: time to first content, and the output so far."""
        span = self.span
        if span is None:
            return
        try:
            if span.ttft_ns is None and has_content(item):
                span.record_first_token()
            if self.opts.capture_output and span._capture:
                if self.items is None:
                    self.items = []
                limits = span._rt.limits
                if len(self.items) < limits.max_items:
                    self.items.append(snapshot(item, limits))
        except Exception as exc:
            report_internal_error(exc, "trace item")

    def stream_done(self) -> None:
        span = self.span
        if span is not None:
            try:
                self._record_items(span)
                span.end()
            except Exception as exc:
                report_internal_error(exc, "trace end")

    def _record_items(self, span: Span) -> None:
        if self.opts.kind == "llm":
            span.is_streaming = True
        items = self.items or []
        if self.opts.capture_output:
            if items and all(type(i) is str for i in items):
                span.set_output("".join(items))
            else:
                span.set_output(items)


def has_content(item: Any) -> bool:
    """An item counts for time to first token unless it is None or empty text."""
    return item is not None and not (type(item) in (str, bytes) and not item)


# -- the four call modes: they differ only in how they call ---------------------

def call_within(span: Span, wrapped: Any, args: Any, kwargs: Any) -> Any:
    """Call ``wrapped`` with ``span`` current; the user's exception is recorded, re-raised."""
    token = _context.activate(span)
    try:
        return wrapped(*args, **kwargs)
    except BaseException as exc:
        fail(span, exc)
        raise
    finally:
        try:
            _reset(token)
        except (TypeError, ValueError):  # a pair, or another context: the general way
            release(token)


async def await_within(span: Span, start: Callable[[], Awaitable[Any]]) -> Any:
    """The async form of :func:`call_within`: ``start()`` makes the awaitable."""
    token = _context.activate(span)
    try:
        return await start()
    except BaseException as exc:
        fail(span, exc)
        raise
    finally:
        release(token)


def _call_sync(opts: CallOptions, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    span = begin(opts, instance, args, kwargs)
    if span is None:
        return wrapped(*args, **kwargs)
    return finish(span, opts, call_within(span, wrapped, args, kwargs))


async def _call_async(opts: CallOptions, wrapped: Any, instance: Any, args: Any,
                      kwargs: Any) -> Any:
    span = begin(opts, instance, args, kwargs)
    if span is None:
        return await wrapped(*args, **kwargs)
    return finish(span, opts, await await_within(span, lambda: wrapped(*args, **kwargs)))


def _call_gen(opts: CallOptions, wrapped: Any, instance: Any, args: Any,
              kwargs: Any) -> Generator[Any, Any, Any]:
    scope = CallScope(opts, instance, args, kwargs)
    with scope:
        gen = wrapped(*args, **kwargs)
    if scope.span is None:
        return (yield from gen)
    send: Callable[[Any], Any] = gen.send
    value: Any = None
    try:
        while True:
            with scope:
                try:
                    item = send(value)
                except StopIteration as stop:
                    scope.stream_done()
                    return stop.value
            scope.item(item)
            try:
                value, send = (yield item), gen.send
            except GeneratorExit:
                gen.close()
                raise
            except BaseException as exc:  # thrown in by the consumer
                value, send = exc, gen.throw
    except GeneratorExit as exc:
        scope.fail(exc)
        raise


async def _call_agen(opts: CallOptions, wrapped: Any, instance: Any, args: Any,
                     kwargs: Any) -> AsyncGenerator[Any, Any]:
    scope = CallScope(opts, instance, args, kwargs)
    with scope:
        agen = wrapped(*args, **kwargs)
    send: Callable[[Any], Any] = agen.asend
    value: Any = None
    try:
        while True:
            with scope:
                try:
                    item = await send(value)
                except StopAsyncIteration:
                    scope.stream_done()
                    return
            scope.item(item)
            try:
                value, send = (yield item), agen.asend
            except GeneratorExit:
                await agen.aclose()
                raise
            except BaseException as exc:
                value, send = exc, agen.athrow
    except GeneratorExit as exc:
        scope.fail(exc)
        raise


def _mode(func: Any) -> Callable[..., Any]:
    target = getattr(func, "__func__", func)  # classmethod / staticmethod objects
    if inspect.isasyncgenfunction(target):
        return _call_agen
    if inspect.iscoroutinefunction(target):
        return _call_async
    if inspect.isgeneratorfunction(target):
        return _call_gen
    return _call_sync


def instrument(func: Any, opts: CallOptions) -> Any:
    """Wrap ``func`` with wrapt so that each call is traced as ``opts`` says."""
    mode = _mode(func)
    if type(func) is types.FunctionType and "__self__" not in func.__dict__:
        # wrapt looks up ``__self__`` on every traced call of a plain function (to find a
        # bound method's instance); a function has none, and the AttributeError raised
        # and cleared each time costs ~400 ns, a fifth of the whole traced call. With
        # ``__self__ = None`` the lookup succeeds and means the same: no instance.
        try:
            func.__self__ = None  # type: ignore[attr-defined]
        except (AttributeError, TypeError):  # pragma: no cover - a read-only function
            pass

    # wrapt calls ``enabled`` (a C method: no Python frame) before the
    # wrapper, and calls the function directly while tracing is off.
    make: Any = wrapt.decorator
    return make(functools.partial(mode, opts), enabled=ACTIVE_FLAG.__len__)(func)
