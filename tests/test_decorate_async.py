"""@trace_llm on coroutine functions: the span covers the awaited call."""

from __future__ import annotations

import asyncio

import pytest

import fallom
from fallom.testing import CapturedSpans, view

from ._helpers import assert_same_identity


async def answer(question: str) -> str:
    """Answer later."""
    await asyncio.sleep(0)
    return question * 2


traced = fallom.trace_llm(answer)


def test_identity_is_preserved() -> None:
    assert_same_identity(answer, traced)


def test_span_covers_the_await_not_the_creation(spans: CapturedSpans) -> None:
    async def main() -> str:
        pending = traced("ab")
        assert spans == []  # nothing started before the coroutine runs
        return await pending

    assert asyncio.run(main()) == "abab"
    assert view(spans[0]).output == "abab"
    assert view(spans[0]).input == {"question": "ab"}


def test_nested_spans_inside_a_coroutine(spans: CapturedSpans) -> None:
    @fallom.trace_llm
    async def outer() -> str:
        return await traced("x")

    asyncio.run(outer())
    inner, root = spans
    assert inner["parent_span_id"] == root["span_id"]
    assert inner["trace_id"] == root["trace_id"]


def test_exception_and_cancellation(spans: CapturedSpans) -> None:
    @fallom.trace_llm
    async def broken() -> None:
        raise ValueError("bad")

    @fallom.trace_llm
    async def slow() -> None:
        await asyncio.sleep(10)

    async def main() -> None:
        with pytest.raises(ValueError, match="bad"):
            await broken()
        task = asyncio.ensure_future(slow())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    failed, cancelled = spans
    assert failed["status"] == "ERROR"
    assert cancelled["status"] == "OK"
    assert cancelled["attributes"]["cancelled"] is True


def test_async_method(spans: CapturedSpans) -> None:
    class Client:
        @fallom.trace_llm
        async def complete(self, prompt: str) -> str:
            return prompt.upper()

    assert asyncio.run(Client().complete("hi")) == "HI"
    assert view(spans[0]).input == {"prompt": "hi"}
    assert spans[0]["name"] == "test_async_method.Client.complete"
