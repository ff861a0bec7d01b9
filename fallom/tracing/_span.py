"""Spans: one timed unit of work, nested through the context.

A span keeps raw values (ints for ids, ns for times) and becomes a wire
record only on the export path, so the caller pays for little more than an
object allocation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from fallom.infra._guard import logger, report_internal_error, report_misuse
from fallom.protocol._capture import snapshot
from fallom.protocol._fields import token_count
from fallom.tracing import _runtime
from fallom.tracing._context import CURRENT_PROMPT, CURRENT_SESSION, CURRENT_SPAN
from fallom.tracing._ids import clock, ids

if TYPE_CHECKING:
    from fallom.tracing._runtime import Runtime
    from fallom.tracing._session import SessionContext

__all__ = ["NOOP_SPAN", "NoOpSpan", "PromptMark", "SharedAttributes", "Span"]

_late_write_logged = False
_CANCEL_TYPES: tuple[type[BaseException], ...]
try:
    from asyncio import CancelledError

    _CANCEL_TYPES = (GeneratorExit, CancelledError)
except ImportError:  # pragma: no cover
    _CANCEL_TYPES = (GeneratorExit,)


class SharedAttributes(dict):  # type: ignore[type-arg]
    """A decoration site's fixed attributes: never written, so spans share them."""

    __slots__ = ()


class PromptMark:
    """The managed prompt last fetched in this context; used by one LLM span only."""

    __slots__ = ("ab_test_key", "key", "used", "variant_index", "version")

    def __init__(self, key: str, version: Any, ab_test_key: str | None = None,
                 variant_index: int | None = None) -> None:
        self.key, self.version = key, version
        self.ab_test_key, self.variant_index = ab_test_key, variant_index
        self.used = False


class Span:
    """A recording span. Every public method is safe: it never raises.

    Get one from ``fallom.span(...)`` or ``fallom.current_span()``; a write after
    the span ended is ignored (said once, at debug level), as is a wrong value
    (said as a warning, rate-limited).

    The fields every span has are slots; the optional ones are class-level
    defaults, written to the instance's ``__dict__`` (made only then) when
    set: creating one costs a handful of slot writes, and a queued span holds
    about half the memory of a plain object.
    """

    _trace_id: int
    _span_id: int
    start_ns: int  # wall clock, ns since the epoch
    start_mono: int  # monotonic clock, ns; 0 once ended
    _parent_id: Optional[int]
    _rt: Runtime  # the runtime it started in: its processors, limits, hook and config key
    attributes: Optional[dict[str, Any]]

    __slots__ = ("__dict__", "_capture", "_entry", "_parent_id", "_record", "_rt", "_span_id",
                 "_trace_id", "attributes", "duration_ns", "input", "kind", "model", "name",
                 "output", "sampled", "session", "start_mono", "start_ns")

    status = "OK"
    error_message: Optional[str] = None
    prompt_tokens: Optional[int] = None
    completion_tokens: Optional[int] = None
    total_tokens: Optional[int] = None
    ttft_ns: Optional[int] = None
    is_streaming = False
    prompt: Optional[PromptMark] = None
    method: Optional[str] = None  # fallom.method of a provider call; its input is the request
    raw_response: Any = None  # a provider call's response, in the reference wrappers' shape
    raw_usage: Any = None  # the provider's own usage object
    _cut = False  # a value could not be encoded and was replaced by a marker
    _reading = False  # its response is being read on the export path, after end()
    _entry: Optional[tuple[Any, Any]]  # (the fallom.span object, its context token) of a with block
    _record: Optional[dict[str, Any]]  # the wire record, built once on the export path
    _deferred: Optional[tuple[Callable[[Any], Any], Any, bool]] = None

    def __init__(self, name: str, kind: str, attributes: Optional[Mapping[str, Any]],
                 rt: Runtime, parent: Optional[Span] = None) -> None:
        """A span of runtime ``rt`` under ``parent`` (else the current span); an LLM
        span also takes the pending managed prompt.

        Args:
            name: the span's name.
            kind: what it stands for (``span``, ``llm``, ``tool``, ...).
            attributes: its first attributes; a decoration site's
                :class:`SharedAttributes` are shared until written, others copied.
            rt: the runtime it reports to, for life: its processors, limits and hooks.
            parent: the span it nests under; None: the current span, else a new trace.
        """
        self.name = name
        self.kind = kind
        if parent is None:
            parent = CURRENT_SPAN.get()
        if parent is None:
            trace_id = self._trace_id = ids.trace_id()
            self._parent_id = None
            self.sampled = (trace_id & 0xFFFFFFFFFFFFFFFF) < rt.sample_threshold
        else:
            self._trace_id = parent._trace_id
            self._parent_id = parent._span_id
            self.sampled = parent.sampled
        self._span_id = ids.span_id()
        self.session: Optional[SessionContext] = CURRENT_SESSION.get()
        # A decoration site's fixed attributes are shared until a write copies them.
        self.attributes = attributes if type(attributes) is SharedAttributes or not attributes \
            else dict(attributes)  # type: ignore[assignment]
        # Bound for life, as OpenTelemetry binds a span to its processors: a later init()
        # changes neither where it goes nor its redact hook, limits or config key.
        self._rt = rt
        self._capture = rt.capture
        self.model: Optional[str] = None
        self.input: Any = _UNSET
        self.output: Any = _UNSET
        self.duration_ns: Optional[int] = None  # set once, by end()
        self._entry = self._record = None
        if kind == "llm":
            mark = CURRENT_PROMPT.get()
            if mark is not None and not mark.used:
                mark.used = True
                self.prompt = mark
        if rt.otel_parent is not None:
            rt.otel_parent(self, parent)
        mono: Optional[int] = None
        if parent is not None:
            # One time base per trace: the parent's start plus the monotonic gap. Reading
            # the wall clock again could be a thread switch away from the monotonic one,
            # and a child would seem to end after its parent. ``base`` is read before the
            # check: end() (maybe in another thread) zeroes it after setting the duration.
            base = parent.start_mono
            if parent.duration_ns is None:
                mono = clock.monotonic_ns()
                self.start_ns = parent.start_ns + (mono - base)
        if mono is None:
            self.start_ns = clock.wall_ns()
            mono = clock.monotonic_ns()
        self.start_mono = mono

    # -- read-only identity -------------------------------------------------
    @property
    def trace_id(self) -> str:
        return f"{self._trace_id:032x}"

    @property
    def span_id(self) -> str:
        return f"{self._span_id:016x}"

    @property
    def parent_span_id(self) -> Optional[str]:
        return None if self._parent_id is None else f"{self._parent_id:016x}"

    def is_recording(self) -> bool:
        """Whether writes still count, as OpenTelemetry's ``is_recording``.

        Returns:
            True until :meth:`end`; False after, when writes are ignored.
        """
        return self.duration_ns is None

    def __repr__(self) -> str:
        return (f"<fallom.Span {self.name!r} kind={self.kind} "
                f"trace={self.trace_id} span={self.span_id}>")

    # -- mutation (safe) ----------------------------------------------------
    def _frozen(self) -> bool:
        """Ended spans are immutable: a later write is ignored (logged once, at debug)."""
        if self.duration_ns is None or self._reading:
            return False
        global _late_write_logged
        if not _late_write_logged:
            _late_write_logged = True
            logger.debug("fallom: a write to span %r after it ended was ignored", self.name)
        return True

    def set_attribute(self, key: str, value: Any) -> None:
        """Set one attribute, replacing an earlier value of ``key``.

        Args:
            key: its name, kept as ``str(key)``.
            value: any value; copied now (within the capture limits), so changing the
                object later does not change the record.
        """
        if self._frozen():
            return
        try:
            if type(self.attributes) is not dict:  # none yet, or the shared ones: copy
                self.attributes = dict(self.attributes or ())
            self.attributes[str(key)] = snapshot(value, self._rt.limits)
        except Exception as exc:
            report_internal_error(exc, "Span.set_attribute")

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        """Set several attributes, as :meth:`set_attribute` does each.

        Args:
            attributes: names to values; anything but a mapping is ignored (and said).
        """
        if self._frozen():
            return
        if not isinstance(attributes, Mapping):
            report_misuse("Span.set_attributes", "attributes must be a mapping, got "
                          + type(attributes).__name__)
            return
        try:
            for key, value in list(attributes.items()):  # one step, if another thread writes
                self.set_attribute(key, value)
        except Exception as exc:
            report_internal_error(exc, "Span.set_attributes")

    def set_input(self, value: Any) -> None:
        """Record what the work was given, replacing the captured arguments.

        Args:
            value: any value, copied now within the capture limits; ignored when
                ``capture_content`` is off.
        """
        if self._capture and (self.duration_ns is None or not self._frozen()):
            self.input = snapshot(value, self._rt.limits)

    def set_output(self, value: Any) -> None:
        """Record what the work produced, replacing the captured return value.

        Args:
            value: any value, copied now within the capture limits; ignored when
                ``capture_content`` is off.
        """
        if self._capture and (self.duration_ns is None or not self._frozen()):
            self.output = snapshot(value, self._rt.limits)

    def set_model(self, model: Optional[str]) -> None:
        """Record the model that answered.

        Args:
            model: its name, kept as ``str(model)``; None or "" leaves the model as is.
        """
        if model is None or self._frozen():
            return
        try:
            if model:
                self.model = str(model)
        except Exception as exc:  # the user's object: its __bool__ or __str__ raised
            report_misuse("Span.set_model", "the model could not be read as text: "
                          + type(model).__name__, exc)

    def record_usage(self, prompt_tokens: Optional[int] = None,
                     completion_tokens: Optional[int] = None,
                     total_tokens: Optional[int] = None) -> None:
        """Record token counts; each given one replaces the earlier value.

        Args:
            prompt_tokens: tokens in; None: unchanged.
            completion_tokens: tokens out; None: unchanged.
            total_tokens: None: the sum of the other two once both are known. A count
                must be a non-negative whole number (``12``, ``12.0``, ``"12"``);
                anything else is ignored and said.
        """
        if self._frozen():
            return
        prompt = _count(prompt_tokens, "prompt_tokens")
        completion = _count(completion_tokens, "completion_tokens")
        total = _count(total_tokens, "total_tokens")
        if prompt is not None:
            self.prompt_tokens = prompt
        if completion is not None:
            self.completion_tokens = completion
        if total is not None:
            self.total_tokens = total
        elif self.prompt_tokens is not None and self.completion_tokens is not None:
            self.total_tokens = self.prompt_tokens + self.completion_tokens

    def record_exception(self, exc: BaseException) -> None:
        """Mark the span failed; cancellation ends it without a user error.

        Args:
            exc: the exception. Its type becomes ``error.type`` and, when
                ``capture_content`` is on, its text the error message; a
                ``GeneratorExit`` or ``CancelledError`` only sets ``cancelled``.
        """
        if self._frozen():
            return
        try:
            if isinstance(exc, _CANCEL_TYPES):
                self.set_attribute("cancelled", True)
                return
            self.status = "ERROR"
            name = type(exc).__name__
            self.error_message = _exception_text(exc) if self._capture else name
            self.set_attribute("error.type", name)
        except Exception as err:
            report_internal_error(err, "Span.record_exception")

    def set_status(self, status: str, message: Optional[str] = None) -> None:
        """Set the span's outcome, as seen by the trace viewer.

        Args:
            status: ``"OK"`` or ``"ERROR"`` (any case); anything else is ignored.
            message: the error message; None keeps the current one. Not recorded
                when ``capture_content`` is off.
        """
        if self._frozen():
            return
        try:
            status = str(status).upper()
            text = str(message) if message is not None and self._capture else None
        except Exception as exc:  # the user's object: its __str__ raised
            report_misuse("Span.set_status", "the status or message could not be read as text",
                          exc)
            return
        if status in ("OK", "ERROR"):
            self.status = status
            if text is not None:
                self.error_message = text

    def defer_read(self, reader: Callable[[Any], Any], result: Any,
                   capture_output: bool = True) -> None:
        """Read an immutable SDK response on the export path, not the caller's.

        Args:
            reader: the extractor to run on ``result`` when the record is built.
            result: the response; it must not change after the call returns.
            capture_output: let the reader's ``output`` into the record (default True).
        """
        self._deferred = (reader, result, capture_output)

    def record_first_token(self) -> None:
        """Note the time to first token (from the span's start), once: later calls
        and calls after :meth:`end` do nothing."""
        if self.ttft_ns is None and self.duration_ns is None:
            self.ttft_ns = clock.monotonic_ns() - self.start_mono

    def end(self) -> None:
        """Finish the span and hand it to the processors; a second call does nothing."""
        if self.duration_ns is not None:
            return
        self.duration_ns = clock.monotonic_ns() - self.start_mono
        self.start_mono = 0  # only needed until now: a queued span holds one int less
        if not self.sampled:
            return
        try:
            for processor in self._rt.processors:
                processor.on_end(self)
            # The test kit's are the live ones: capture_spans() collects the spans that
            # end inside its block, wherever they started.
            for processor in _runtime.STATE.test_processors:
                processor.on_end(self)
        except Exception as exc:
            report_internal_error(exc, "Span.end")


def _count(value: Any, name: str) -> Optional[int]:
    """:func:`token_count`, with a misuse said when a value was given but is not one."""
    if value is None:
        return None
    count = token_count(value)
    if count is None:
        report_misuse("Span.record_usage", f"{name} must be a whole number of tokens, got "
                      + type(value).__name__)
    return count


def _exception_text(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


class NoOpSpan:
    """What ``current_span()`` returns outside any span: every call does nothing."""

    __slots__ = ()
    trace_id = "0" * 32
    span_id = "0" * 16
    parent_span_id = None
    name = ""

    def is_recording(self) -> bool:
        """Whether writes count: never, here.

        Returns:
            False.
        """
        return False

    def __getattr__(self, name: str) -> Callable[..., None]:
        return _noop

    def __repr__(self) -> str:
        return "<fallom.NoOpSpan>"


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


NOOP_SPAN = NoOpSpan()
