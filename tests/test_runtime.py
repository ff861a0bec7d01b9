"""State that survives concurrency, re-init and fork (issue 14's reproductions)."""

from __future__ import annotations

import asyncio
import threading
from typing import List

import pytest

import fallom
from fallom.testing import CapturedSpans, view

from ._records import run_in_threads
from ._traces_server import TracesServer


def test_one_span_object_entered_by_two_tasks(spans: CapturedSpans) -> None:
    step = fallom.span("step")
    seen: List[object] = []

    async def task(delay: float) -> None:
        with step as mine:
            await asyncio.sleep(delay)
            seen.append(fallom.current_span() is mine)
        seen.append(fallom.current_span())

    async def main() -> None:
        await asyncio.gather(task(0.04), task(0.01))

    asyncio.run(main())
    assert seen[0] is True  # each task saw its own span
    assert seen[2] is True
    assert all(not s.is_recording() for s in seen[1::2])  # and none is left current
    assert len(spans) == 2
    assert len({r["span_id"] for r in spans}) == 2
    slow, fast = sorted(spans, key=lambda r: -view(r).duration_ms)
    assert view(slow).duration_ms >= view(fast).duration_ms  # each ended by its own exit


def test_one_span_object_entered_by_many_threads(spans: CapturedSpans) -> None:
    step = fallom.span("step")
    barrier = threading.Barrier(8)
    errors: List[str] = []

    def work(_: int) -> None:
        with step as mine:
            barrier.wait(5)
            if fallom.current_span() is not mine:
                errors.append("wrong span")
        if fallom.current_span().is_recording():
            errors.append("span left current")

    run_in_threads(work, 8)
    assert errors == []
    assert len({r["span_id"] for r in spans}) == 8


def test_one_session_object_entered_by_two_tasks(spans: CapturedSpans) -> None:
    shared = fallom.session(config_key="c", session_id="shared")
    after: List[object] = []

    async def task(delay: float) -> None:
        with shared:
            await asyncio.sleep(delay)
            with fallom.span("inside"):
                pass
        with fallom.span("outside"):
            pass

    async def main() -> None:
        await asyncio.gather(task(0.03), task(0.01))

    asyncio.run(main())
    inside = [r for r in spans if r["name"] == "inside"]
    outside = [r for r in spans if r["name"] == "outside"]
    assert [r["session_id"] for r in inside] == ["shared", "shared"]
    assert all(r["session_id"] == r["trace_id"] for r in outside)  # no session left open
    del after


def test_toggling_otel_context_mid_span_ends_it_cleanly(spans: CapturedSpans) -> None:
    pytest.importorskip("opentelemetry.sdk")
    fallom.init(otel_context=True)
    with fallom.span("outer") as outer:
        fallom.init(otel_context=False)
        with fallom.span("inner") as inner:
            fallom.init(otel_context=True)
        assert fallom.current_span() is outer
    assert not fallom.current_span().is_recording()
    assert inner.parent_span_id == outer.span_id


def test_the_programs_seeding_cannot_repeat_ids(spans: CapturedSpans) -> None:
    import random

    random.seed(42)
    with fallom.span("first"):
        pass
    random.seed(42)
    with fallom.span("second"):
        pass
    first, second = spans
    assert first["trace_id"] != second["trace_id"]
    assert first["span_id"] != second["span_id"]


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_draws_other_ids(spans: CapturedSpans) -> None:
    import os

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one span id, to the pipe
        try:
            with fallom.span("child") as child:
                os.write(write, child.span_id.encode())
        finally:
            os._exit(0)
    os.close(write)
    with fallom.span("parent") as parent:
        pass
    os.waitpid(pid, 0)
    assert os.read(read, 64).decode() != parent.span_id
    os.close(read)


def test_deterministic_ids_still_repeat_on_purpose() -> None:
    from fallom.testing import capture_spans, deterministic

    fallom.init()
    runs = []
    for _ in range(2):
        with deterministic(), capture_spans() as records:
            with fallom.span("x"):
                pass
        runs.append(records[0]["trace_id"])
    assert runs[0] == runs[1]


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_fork_while_the_worker_builds_a_record(traces_server: TracesServer) -> None:
    import os

    parent = os.getpid()
    building = threading.Event()
    release = threading.Event()

    def redact(record: dict) -> dict:
        if os.getpid() == parent and record["name"] == "blocker":
            building.set()  # the worker now holds the record-building lock
            release.wait(10)
        return record

    fallom.init(api_key="k", traces_url=traces_server.url, configs_url=traces_server.url,
                prompts_url=traces_server.url, redact=redact)
    with fallom.span("blocker"):
        pass
    fallom.flush(0.0)  # wakes the worker
    assert building.wait(5)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its own span must get through
        status = 1
        try:
            with fallom.span("from-child"):
                pass
            status = 0 if fallom.flush(5.0) else 2
        finally:
            os._exit(status)
    release.set()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert fallom.flush(5.0)
    assert sorted(r["name"] for r in traces_server.records) == ["blocker", "from-child"]
    os.close(read)
    os.close(write)


def test_an_ended_span_ignores_later_writes_in_every_pipeline(
        traces_server: TracesServer) -> None:
    from fallom.testing import capture_spans

    fallom.init(api_key="k", traces_url=traces_server.url)
    with capture_spans() as captured:
        with fallom.span("done") as span:
            span.set_attribute("during", 1)
        span.set_attribute("after", 2)
        span.set_output("late")
        span.record_usage(prompt_tokens=5)
        span.set_status("ERROR", "late")
        span.record_exception(ValueError("late"))
    assert fallom.flush(5.0)
    for record in (captured[0], traces_server.records[0]):
        assert record["attributes"]["during"] == 1
        assert "after" not in record["attributes"]
        assert record["status"] == "OK"
        assert view(record).output is None
        assert view(record).prompt_tokens is None


@pytest.mark.parametrize("app_logging", [True, False])
def test_debug_lines_print_once_with_or_without_the_apps_logging(app_logging: bool) -> None:
    import subprocess
    import sys

    code = ("import logging, fallom\n" + ("logging.basicConfig()\n" if app_logging else "")
            + "fallom.init(debug=True)\n"
            + "logging.getLogger('fallom').debug('fallom: marker-line')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stderr.count("marker-line") == 1


def test_stats_never_go_backwards_while_a_re_init_closes_processors(
        traces_server: TracesServer) -> None:
    traces_server.default = ("delay", 0.05)
    fallom.init(api_key="k", traces_url=traces_server.url)
    for i in range(50):
        with fallom.span(f"s{i}"):
            pass
    assert fallom.flush(10.0)
    seen: List[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(fallom.stats()["sent"])

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(5):
            with fallom.span("more"):
                pass
            fallom.init(api_key="k", traces_url=traces_server.url)  # closes the old pipeline
    finally:
        stop.set()
        watcher.join()
    assert seen == sorted(seen)
    assert fallom.stats()["sent"] == 55


def test_foreign_spans_dropped_by_redact_or_after_shutdown_are_counted() -> None:
    otel_sdk = pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = otel_sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(fallom.FallomExporter()))
    tracer = provider.get_tracer("app")
    fallom.init(redact=lambda record: None if record["name"] == "secret" else record)
    with tracer.start_as_current_span("secret"):
        pass
    assert fallom.stats()["dropped"]["redacted"] == 1
    fallom.shutdown(1.0)
    with tracer.start_as_current_span("late"):
        pass
    assert fallom.stats()["dropped"]["shutdown"] == 1


def test_the_batch_in_flight_at_shutdown_is_counted_once(
        traces_server: TracesServer, capfd: pytest.CaptureFixture[str]) -> None:
    traces_server.default = ("hang",)
    fallom.init(api_key="k", traces_url=traces_server.url, batch=True)
    for _ in range(3):
        with fallom.span("stuck"):
            pass
    fallom.flush(0.0)
    assert traces_server.wait_for_requests(1)
    fallom.shutdown(0.5)
    traces_server.release()
    assert fallom.stats()["dropped"]["shutdown"] == 3
    assert "3 spans undelivered" in capfd.readouterr().err


def test_reset_forgets_settings_and_counters(traces_server: TracesServer) -> None:
    from fallom.testing import reset

    fallom.init(api_key="k", traces_url=traces_server.url, capture_content=False)
    with fallom.span("x"):
        pass
    assert fallom.flush(5.0)
    assert fallom.stats()["sent"] == 1
    reset()
    assert fallom.stats()["sent"] == 0
    assert not fallom.current_span().is_recording()
    from fallom.tracing import _runtime

    assert _runtime.STATE.settings.capture_content is True
    assert not _runtime.STATE.processors
