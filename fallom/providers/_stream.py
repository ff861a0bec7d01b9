"""Streams handed back to the user: the same chunks, in the same number, observed.

A stream's span ends when it is exhausted, closed, left by its ``with``
block, or garbage collected; what was read so far is recorded either way.
"""

from __future__ import annotations

import weakref
from types import TracebackType
from typing import Any, AsyncIterator, Iterator, Optional

from fallom.infra._guard import report_internal_error
from fallom.providers._base import Accumulator, ObjectProxy
from fallom.tracing import _extract
from fallom.tracing._span import Span

__all__ = ["StreamState", "TracedStream", "observe_events"]


class StreamState:
    """One stream's span and accumulator; every method is safe and idempotent."""

    __slots__ = ("__weakref__", "acc", "done", "hide", "span")

    def __init__(self, span: Span, acc: Accumulator, hide: bool) -> None:
        self.span, self.acc, self.hide, self.done = span, acc, hide, False

    def add(self, chunk: Any) -> bool:
        """Observe ``chunk``; False when the user must not see it."""
        try:
            if self.acc.add(chunk) and self.span.ttft_ns is None:
                self.span.record_first_token()
            return not (self.hide and self.acc.hidden(chunk))
        except Exception as exc:
            report_internal_error(exc, "stream chunk")
            return True

    def finish(self, exc: Optional[BaseException] = None, cancelled: bool = False) -> None:
        if self.done:
            return
        self.done = True
        try:
            self.span.is_streaming = True
            _extract.apply(self.span, self.acc.fields())
            if exc is not None:
                self.span.record_exception(exc)
            elif cancelled:
                self.span.set_attribute("cancelled", True)
        except Exception as err:
            report_internal_error(err, "stream end")
        self.span.end()

    def abandon(self) -> None:
        self.finish(cancelled=True)


class TracedStream(ObjectProxy):
    """A stream (SDK ``Stream``/``AsyncStream``, a generator, LiteLLM's wrapper, which is
    both) that records as it is read; sync and async iteration differ only in the awaits."""

    def __init__(self, wrapped: Any, state: StreamState) -> None:
        super().__init__(wrapped)
        self._self_state = state
        weakref.finalize(self, state.abandon)

    def __iter__(self) -> Iterator[Any]:
        state = self._self_state
        try:
            for chunk in self.__wrapped__:
                if state.add(chunk):
                    yield chunk
        except GeneratorExit:
            state.finish(cancelled=True)
            raise
        except BaseException as exc:
            state.finish(exc)
            raise
        state.finish()

    async def __aiter__(self) -> AsyncIterator[Any]:
        state = self._self_state
        try:
            async for chunk in self.__wrapped__:
                if state.add(chunk):
                    yield chunk
        except GeneratorExit:
            state.finish(cancelled=True)
            raise
        except BaseException as exc:
            state.finish(exc)
            raise
        state.finish()

    def __next__(self) -> Any:
        state = self._self_state
        while True:
            try:
                chunk = next(self.__wrapped__)
            except StopIteration:
                state.finish()
                raise
            except BaseException as exc:
                state.finish(exc)
                raise
            if state.add(chunk):
                return chunk

    async def __anext__(self) -> Any:
        state = self._self_state
        while True:
            try:
                chunk = await self.__wrapped__.__anext__()
            except StopAsyncIteration:
                state.finish()
                raise
            except BaseException as exc:
                state.finish(exc)
                raise
            if state.add(chunk):
                return chunk

    def __enter__(self) -> TracedStream:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_state.finish(exc, cancelled=exc is None)

    async def __aenter__(self) -> TracedStream:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Optional[type[BaseException]],
                        exc: Optional[BaseException], tb: Optional[TracebackType]) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_state.finish(exc, cancelled=exc is None)

    def close(self) -> Any:
        """Closes the stream (an awaitable for async SDK streams, returned as is)."""
        try:
            return self.__wrapped__.close()
        finally:
            self._self_state.finish(cancelled=True)

    def aclose(self) -> Any:
        try:
            return self.__wrapped__.aclose()
        finally:
            self._self_state.finish(cancelled=True)


class _Observed:
    """Feeds each event of an SDK's raw stream to the state, changing nothing."""

    def __init__(self, raw: Any, state: StreamState) -> None:
        self._raw, self._state = raw, state

    def __iter__(self) -> Iterator[Any]:
        for event in self._raw:
            self._state.add(event)
            yield event

    async def __aiter__(self) -> AsyncIterator[Any]:
        async for event in self._raw:
            self._state.add(event)
            yield event

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def observe_events(message_stream: Any, state: StreamState) -> None:
    """Let ``state`` see the raw events an Anthropic ``MessageStream`` reads.

    Its iterator reads ``_raw_stream`` lazily, on the first event, so the
    attribute can be replaced on the object the user gets, right after
    ``__enter__``. Without it (a future SDK), usage still comes from the
    final snapshot, only time to first token is lost.
    """
    raw = getattr(message_stream, "_raw_stream", None)
    if raw is not None:
        message_stream._raw_stream = _Observed(raw, state)
