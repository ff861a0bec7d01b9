"""Concurrency: tasks and threads never see each other's span or session."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import fallom
from fallom.testing import CapturedSpans


def leaf(name: str) -> None:
    with fallom.span(name):
        pass


def check_tree(spans: CapturedSpans, expected_roots: int) -> None:
    by_id = {r["span_id"]: r for r in spans}
    roots = [r for r in spans if "parent_span_id" not in r]
    assert len(roots) == expected_roots
    for record in spans:
        if "parent_span_id" in record:
            parent = by_id[record["parent_span_id"]]
            assert parent.get("session_id") == record.get("session_id")
            assert parent["trace_id"] == record["trace_id"]
            assert record["name"].startswith(parent["name"])


def test_200_tasks_and_8_threads(spans: CapturedSpans) -> None:
    async def task(i: int) -> None:
        async with fallom.session(config_key="c", session_id=f"task-{i}"):
            async with fallom.span(f"task-{i}"):
                await asyncio.sleep(0)
                leaf(f"task-{i}/a")
                await asyncio.gather(asyncio.sleep(0), asyncio.sleep(0))
                leaf(f"task-{i}/b")

    def thread(i: int, start: threading.Barrier) -> None:
        with fallom.session(config_key="c", session_id=f"thread-{i}"):
            with fallom.span(f"thread-{i}"):
                start.wait()
                for j in range(50):
                    leaf(f"thread-{i}/{j}")

    async def all_tasks() -> None:
        await asyncio.gather(*(task(i) for i in range(200)))

    barrier = threading.Barrier(9)
    threads = [threading.Thread(target=thread, args=(i, barrier)) for i in range(8)]
    for t in threads:
        t.start()
    barrier.wait()
    asyncio.run(all_tasks())
    for t in threads:
        t.join()
    assert len(spans) == 200 * 3 + 8 * 51
    check_tree(spans, expected_roots=208)


def test_thread_pool_keeps_span_and_session(spans: CapturedSpans) -> None:
    with fallom.session(config_key="c", session_id="pool"), fallom.span("parent"):
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(leaf, [f"parent/{i}" for i in range(8)]))
            pool.submit(leaf, "parent/submitted").result()
    check_tree(spans, expected_roots=1)
    assert len(spans) == 10


def test_run_in_executor_keeps_the_parent(spans: CapturedSpans) -> None:
    async def main() -> None:
        async with fallom.span("loop"):
            await asyncio.get_running_loop().run_in_executor(None, leaf, "loop/child")

    asyncio.run(main())
    child, parent = spans
    assert child["parent_span_id"] == parent["span_id"]


def test_propagation_can_be_turned_off() -> None:
    fallom.init(propagate_threads=False)
    from fallom.testing import capture_spans

    with capture_spans() as spans, fallom.span("parent"):
        with ThreadPoolExecutor(1) as pool:
            pool.submit(leaf, "orphan").result()
    orphan = spans.by_name("orphan")
    assert "parent_span_id" not in orphan


def test_bind_context_for_plain_threads(spans: CapturedSpans) -> None:
    with fallom.span("parent"):
        worker = threading.Thread(target=fallom.bind_context(leaf), args=("parent/t",))
        worker.start()
        worker.join()
    assert spans.names() == ["parent/t", "parent"]
    check_tree(spans, expected_roots=1)
