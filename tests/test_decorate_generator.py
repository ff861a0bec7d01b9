"""@trace_llm on generators and async generators: the span covers the iteration."""

from __future__ import annotations

import asyncio
import gc
from typing import AsyncIterator, Iterator

import pytest

import fallom
from fallom.testing import CapturedSpans, view
from fallom.tracing import _ids

from ._helpers import assert_same_identity


def stream(n: int) -> Iterator[str]:
    """Yield n tokens."""
    for i in range(n):
        yield f"t{i} "
    return None


async def astream(n: int) -> AsyncIterator[str]:
    """Yield n tokens, asynchronously."""
    for i in range(n):
        await asyncio.sleep(0)
        yield f"t{i} "


traced = fallom.trace_llm(stream)
atraced = fallom.trace_llm(astream)


def test_identity_is_preserved() -> None:
    assert_same_identity(stream, traced)
    assert_same_identity(astream, atraced)


def test_exhausted_generator(spans: CapturedSpans) -> None:
    items = list(traced(3))
    assert items == ["t0 ", "t1 ", "t2 "]
    (record,) = spans
    assert view(record).output == "t0 t1 t2 "
    assert record["is_streaming"] is True
    assert view(record).time_to_first_token_ms >= 0


def test_time_to_first_token_is_the_first_item_with_content(spans: CapturedSpans) -> None:
    ticks = iter(range(0, 10**12, 1_000_000))  # each clock reading is 1 ms later
    _ids.clock.monotonic_ns = lambda: next(ticks)

    @fallom.trace_llm
    def slow_start() -> Iterator[str]:
        yield ""
        yield "hello"

    list(slow_start())
    # readings: start=0, empty item (no reading), "hello" at 1 ms, end at 2 ms
    assert view(spans[0]).time_to_first_token_ms == 1.0
    assert view(spans[0]).duration_ms == 2.0


def test_break_ends_the_span_when_collected(spans: CapturedSpans) -> None:
    gen = traced(10)
    for item in gen:
        if item == "t1 ":
            break
    assert spans == []
    del gen
    gc.collect()
    (record,) = spans
    assert view(record).output == "t0 t1 "
    assert record["status"] == "OK"
    assert record["attributes"]["cancelled"] is True


def test_close_ends_the_span(spans: CapturedSpans) -> None:
    gen = traced(5)
    next(gen)
    gen.close()
    assert len(spans) == 1


def test_send_and_throw_reach_the_user_generator(spans: CapturedSpans) -> None:
    @fallom.trace_llm
    def echo() -> Iterator[str]:
        received = "start"
        while True:
            try:
                received = yield received
            except KeyError:
                received = "caught"

    gen = echo()
    assert next(gen) == "start"
    assert gen.send("a") == "a"
    assert gen.throw(KeyError("k")) == "caught"
    gen.close()
    assert view(spans[0]).output == "startacaught"


def test_return_value_survives(spans: CapturedSpans) -> None:
    @fallom.trace_llm
    def gives() -> Iterator[int]:
        yield 1
        return 42  # type: ignore[misc]

    def outer() -> Iterator[int]:
        result = yield from gives()
        assert result == 42

    assert list(outer()) == [1]
    assert view(spans[0]).output == [1]


def test_error_inside_the_generator(spans: CapturedSpans) -> None:
    @fallom.trace_llm
    def broken() -> Iterator[str]:
        yield "a"
        raise RuntimeError("mid-stream")

    with pytest.raises(RuntimeError, match="mid-stream"):
        list(broken())
    assert spans[0]["status"] == "ERROR"
    assert view(spans[0]).output == "a"


def test_span_is_current_only_while_the_generator_runs(spans: CapturedSpans) -> None:
    seen = []

    @fallom.trace_llm
    def gen() -> Iterator[int]:
        seen.append(fallom.current_span().span_id)
        yield 1
        seen.append(fallom.current_span().span_id)

    iterator = gen()
    next(iterator)
    assert fallom.current_span().is_recording() is False
    list(iterator)
    assert seen[0] == seen[1] == spans[0]["span_id"]


def test_async_generator(spans: CapturedSpans) -> None:
    async def main() -> list:
        return [item async for item in atraced(3)]

    assert asyncio.run(main()) == ["t0 ", "t1 ", "t2 "]
    assert view(spans[0]).output == "t0 t1 t2 "
    assert spans[0]["is_streaming"] is True


def test_async_generator_broken_off(spans: CapturedSpans) -> None:
    async def main() -> None:
        agen = atraced(10)
        async for item in agen:
            if item == "t0 ":
                break
        await agen.aclose()

    asyncio.run(main())
    assert view(spans[0]).output == "t0 "
    assert spans[0]["attributes"]["cancelled"] is True


def test_async_generator_error(spans: CapturedSpans) -> None:
    @fallom.trace_llm
    async def broken() -> AsyncIterator[int]:
        yield 1
        raise ValueError("boom")

    async def main() -> None:
        async for _ in broken():
            pass

    with pytest.raises(ValueError, match="boom"):
        asyncio.run(main())
    assert spans[0]["status"] == "ERROR"
