"""The user's objects cannot make a span raise, or lose it (issue 24, points 10 and 11)."""

from __future__ import annotations

import gc
import sys
import threading
import tracemalloc
from typing import Any, Dict, Iterator, List

import pytest

import fallom
from fallom.testing import CapturedSpans, view

from ._traces_server import TracesServer


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    __repr__ = __str__


class NoTruth:
    """As a numpy array or a pandas Series answers ``bool()``."""

    def __bool__(self) -> bool:
        raise ValueError("the truth value is ambiguous")


def test_set_status_and_set_model_with_objects_that_refuse(spans: CapturedSpans) -> None:
    with fallom.span("refusing") as span:
        span.set_status(Unprintable())
        span.set_status("ERROR", Unprintable())
        span.set_model(NoTruth())
        span.set_model(Unprintable())
    record = spans.by_name("refusing")
    assert record["status"] == "OK"
    assert "model" not in record


@pytest.fixture
def mutated() -> Iterator[Dict[str, Any]]:
    """A dict another thread keeps changing (adding and removing keys) until the test ends;
    thread switches are made frequent so that a reader is interrupted mid-read. A float
    comes and goes: plain scalars are copied at once, anything else converted item by item."""
    shared: Dict[str, Any] = {f"k{i}": i for i in range(200)}
    stop = threading.Event()

    def mutate() -> None:
        n = 0
        while not stop.is_set():
            shared[f"extra{n % 50}"] = n
            shared.pop(f"extra{(n + 25) % 50}", None)
            if n % 100 == 0:
                shared["ratio"] = 0.5
            elif n % 100 == 50:
                del shared["ratio"]
            n += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    thread = threading.Thread(target=mutate, daemon=True)
    thread.start()
    try:
        yield shared
    finally:
        stop.set()
        thread.join(10)
        sys.setswitchinterval(interval)


def test_set_input_of_a_dict_another_thread_changes(spans: CapturedSpans,
                                                    mutated: Dict[str, Any]) -> None:
    with fallom.span("reader") as span:
        for _ in range(4_000):
            span.set_input(mutated)
            span.set_output(mutated)
            span.set_attribute("arguments", mutated)
            span.set_attributes(mutated)
    record = spans.by_name("reader")
    assert isinstance(view(record).input, dict)
    assert isinstance(record["attributes"]["arguments"], dict)


def test_a_traced_call_on_a_dict_another_thread_changes(spans: CapturedSpans,
                                                        mutated: Dict[str, Any]) -> None:
    @fallom.trace_llm
    def count(arguments: Dict[str, int], nested: List[Any]) -> int:
        return len(arguments)

    calls = 2_000
    for _ in range(calls):
        assert count(mutated, [mutated, {"inner": mutated}]) >= 200
    assert len(spans) == calls  # not one span lost
    for record in spans:
        assert "k0" in view(record).input["arguments"]


def test_a_twenty_megabyte_span_name_is_clipped_not_lost(traces_server: TracesServer) -> None:
    fallom.init(api_key="k", traces_url=traces_server.url, capture_max_chars=100)
    with fallom.span("n" * 20_000_000):
        pass
    assert fallom.flush(10)
    (record,) = traces_server.records
    assert record["name"] == "n" * 100 + f"…[truncated {20_000_000 - 100} chars]"
    assert record["attributes"]["fallom.method"] == record["name"]


def test_names_made_per_call_are_not_kept() -> None:
    fallom.init()
    tracemalloc.start()
    try:
        gc.collect()
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1_024):
            with fallom.span(f"{i}:" + "x" * 100_000):
                pass
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert peak < 4_000_000  # never the ~100 MB of 1,024 names of 100 KB
