"""fallom.span and current_span: blocks, decorators, nesting, ids and times."""

from __future__ import annotations

import asyncio
import datetime
import re

import pytest

import fallom
from fallom.testing import CapturedSpans, view
from fallom.tracing import _ids

from ._records import own_attributes


def test_nested_blocks_share_the_trace_and_link_parents(spans: CapturedSpans) -> None:
    with fallom.span("root", kind="agent") as root:
        with fallom.span("retrieve", kind="retrieval", attributes={"k": 3}) as child:
            assert fallom.current_span() is child
        assert fallom.current_span() is root
    retrieve, top = spans
    assert (top["kind"], retrieve["kind"]) == ("agent", "retrieval")
    assert retrieve["trace_id"] == top["trace_id"]
    assert retrieve["parent_span_id"] == top["span_id"]
    assert own_attributes(retrieve) == {"k": 3}
    assert re.fullmatch(r"[0-9a-f]{32}", top["trace_id"])
    assert re.fullmatch(r"[0-9a-f]{16}", top["span_id"])
    assert (root.trace_id, root.span_id, root.name) == (top["trace_id"], top["span_id"], "root")


def test_times_are_iso_utc_and_duration_is_monotonic(spans: CapturedSpans) -> None:
    ticks = iter([0, 2_500_000])
    _ids.clock.monotonic_ns = lambda: next(ticks)
    _ids.clock.wall_ns = lambda: 1_700_000_000_123_456_789
    with fallom.span("timed"):
        pass
    record = spans[0]
    assert record["start_time"] == "2023-11-14T22:13:20.123456Z"
    assert record["end_time"] == "2023-11-14T22:13:20.125956Z"
    assert record["duration_ms"] == 3  # whole milliseconds on the wire
    assert view(record).duration_ms == 2.5
    parsed = datetime.datetime.strptime(record["start_time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert parsed.microsecond == 123456


def test_a_trace_keeps_one_time_base_when_the_wall_clock_steps(spans: CapturedSpans) -> None:
    # An NTP step, or a thread switch between reading the two clocks: the wall clock
    # moves 1 s back after the root started. A child must still sit inside its parent.
    walls = iter([1_700_000_000_000_000_000, 1_699_999_999_000_000_000])
    _ids.clock.wall_ns = lambda: next(walls, 1_699_999_999_000_000_000)
    with fallom.span("root"):
        with fallom.span("child"):
            pass
    child, root = spans
    assert root["start_time"] <= child["start_time"] <= child["end_time"] <= root["end_time"]
    with fallom.span("next root"):  # a new trace reads the wall clock again
        pass
    assert spans[2]["start_time"] == "2023-11-14T22:13:19.000000Z"


def test_span_methods(spans: CapturedSpans) -> None:
    with fallom.span("call", kind="llm") as span:
        span.set_attribute("temperature", 0.2)
        span.set_attributes({"top_p": 1, "stop": ["\n"]})
        span.set_input({"prompt": "hi"})
        span.set_output("hello")
        span.set_model("gpt-x")
        span.record_usage(prompt_tokens=5, completion_tokens=7)
    record = spans[0]
    assert own_attributes(record) == {"temperature": 0.2, "top_p": 1, "stop": ["\n"]}
    assert view(record).input == {"prompt": "hi"}
    assert view(record).output == "hello"
    assert (record["model"], view(record).prompt_tokens, view(record).completion_tokens,
            view(record).total_tokens) == ("gpt-x", 5, 7, 12)


def test_record_exception_and_set_status(spans: CapturedSpans) -> None:
    with fallom.span("soft-failure") as span:
        span.record_exception(TimeoutError("took too long"))
    with fallom.span("marked") as span:
        span.set_status("error", "bad answer")
    assert spans[0]["status"] == "ERROR"
    assert spans[0]["error_message"] == "TimeoutError: took too long"
    assert (spans[1]["status"], spans[1]["error_message"]) == ("ERROR", "bad answer")


def test_exception_in_block_is_recorded_and_propagates(spans: CapturedSpans) -> None:
    with pytest.raises(ZeroDivisionError), fallom.span("div"):
        1 / 0
    assert spans[0]["status"] == "ERROR"
    assert fallom.current_span().is_recording() is False


def test_async_with_and_decorator(spans: CapturedSpans) -> None:
    @fallom.span("tool-call", kind="tool")
    async def tool(x: int) -> int:
        return x + 1

    @fallom.span("sync-tool", kind="tool")
    def sync_tool() -> str:
        return fallom.current_span().name

    async def main() -> int:
        async with fallom.span("agent") as agent:
            assert fallom.current_span() is agent
            return await tool(1)

    assert asyncio.run(main()) == 2
    assert sync_tool() == "sync-tool"
    tool_rec, agent_rec, sync_rec = spans
    assert tool_rec["parent_span_id"] == agent_rec["span_id"]
    assert not view(tool_rec).has_input
    assert not view(tool_rec).has_output
    assert sync_rec["kind"] == "tool"


def test_current_span_outside_is_a_noop() -> None:
    span = fallom.current_span()
    assert span.is_recording() is False
    span.set_attribute("x", 1)
    span.record_usage(prompt_tokens=1)
    assert span.trace_id == "0" * 32


def test_end_twice_records_once(spans: CapturedSpans) -> None:
    with fallom.span("once") as span:
        pass
    span.end()  # type: ignore[union-attr]
    assert len(spans) == 1


def test_empty_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="name"):
        fallom.span("")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": 5}, "kind must be a non-empty string, got 5"),
    ({"kind": ""}, "kind must be a non-empty string"),
    ({"attributes": "k=3"}, "attributes must be a mapping of names to values, got str"),
])
def test_a_wrong_kind_or_attributes_is_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):  # dict() said "update sequence element"
        fallom.span("block", **kwargs)
