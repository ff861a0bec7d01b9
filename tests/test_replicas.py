"""Two replicas on one PostgreSQL database behave as one server: a span sent to both is
stored once, spans of one trace written through both are all counted, each reads the
other's writes, and a catalog loaded or edited under both makes each version once."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest
from sqlalchemy import text

from fallom.server import _views
from fallom.server._catalog import Catalog
from fallom.server._ingest import prepare
from fallom.server._store import Store

from ._databases import postgres_db  # noqa: F401  (a fixture)
from ._records import run_in_threads


@pytest.fixture
def replicas(postgres_db: str) -> Iterator[Tuple[Store, Store]]:  # noqa: F811
    first, second = Store(postgres_db), Store(postgres_db)
    yield first, second
    first.close()
    second.close()


def rows(*records: Dict[str, Any]) -> List[Any]:
    made = [prepare(record)[0] for record in records]
    assert None not in made
    return made


def span(i: int, trace: int = 1, **extra: Any) -> Dict[str, Any]:
    return {"trace_id": f"{trace:032x}", "span_id": f"{trace:08x}{i + 1:08x}",
            "name": f"span-{i}", "start_time": f"2026-01-01T00:00:{i % 60:02d}.{i:06d}Z",
            "status": "OK", "total_tokens": 1, **extra}


def together(*work: Callable[[], Any]) -> List[Any]:
    """Run each on its own thread, released at once; their results in order (or the first
    exception one raised)."""
    barrier = threading.Barrier(len(work))
    results: List[Any] = [None] * len(work)
    failures: List[BaseException] = []

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work[index]()
        except BaseException as exc:  # raised again on the test's thread
            failures.append(exc)

    run_in_threads(run, len(work))
    if failures:
        raise failures[0]
    return results


def test_the_same_span_sent_to_both_replicas_is_stored_once(
        replicas: Tuple[Store, Store]) -> None:
    first, second = replicas
    for round_ in range(20):
        batch = rows(*(span(round_ * 50 + i, trace=round_ + 1) for i in range(50)))
        stored = together(lambda: first.add_rows(batch), lambda: second.add_rows(batch))
        assert sum(stored) == 50, (round_, stored)
    assert first.query("SELECT COUNT(*), COUNT(DISTINCT span_id) FROM spans") == [(1000, 1000)]
    assert [t["spans"] for t in second.traces(limit=100)] == [50] * 20


def test_spans_of_one_trace_written_through_both_replicas_are_all_counted(
        replicas: Tuple[Store, Store]) -> None:
    # each replica re-makes the trace's summary from its spans: without a lock per trace,
    # one would write a summary without the other's spans, committed at the same moment
    first, second = replicas
    for trace in range(1, 31):
        halves = [rows(*(span(i, trace=trace) for i in range(start, 50, 2))) for start in (0, 1)]
        together(lambda: first.add_rows(halves[0]), lambda: second.add_rows(halves[1]))
    for store in replicas:
        assert [(t["spans"], t["total_tokens"]) for t in store.traces()] == [(50, 50)] * 30


def test_one_session_written_through_both_replicas_is_counted_whole(
        replicas: Tuple[Store, Store]) -> None:
    # the sessions page's row of a session is made again from its parts by whichever
    # replica adds to it: without a lock per session, one would miss the other's trace
    first, second = replicas
    for session in range(20):
        traces = [rows(*(span(i, trace=session * 2 + half + 1, session_id=f"s-{session}")
                         for i in range(5))) for half in (0, 1)]
        together(lambda: first.add_rows(traces[0]), lambda: second.add_rows(traces[1]),
                 lambda: first.set_metrics(f"s-{session}", "agent", {"csat": "5"}))
    for store in replicas:
        shown = {s["session_id"]: (s["traces"], s["spans"], s["total_tokens"])
                 for s in _views.sessions(store, limit=100)}
        assert shown == {f"s-{session}": (2, 10, 10) for session in range(20)}


def test_each_replica_reads_what_the_other_wrote(replicas: Tuple[Store, Store]) -> None:
    first, second = replicas
    first.add_rows(rows(span(0, session_id="s-1", model="gpt-4o")))
    first.set_metrics("s-1", "agent", {"csat": "5"})
    run = first.add_run({"name": "r", "description": None, "judge_model": None,
                         "dataset_size": 1, "summary": {}}, [{"input": "a"}])
    assert [t["trace_id"] for t in second.traces(model="gpt-4o")] == [f"{1:032x}"]
    assert [s["name"] for s in second.trace(f"{1:032x}")] == ["span-0"]
    assert second.metrics(["s-1"])["s-1"]["agent"]["csat"]["value"] == 5
    assert (second.run(run["run_id"]) or {}).get("results") == [{"input": "a"}]
    assert second.set_metrics("s-1", "agent", {"csat": "5"}) == 0  # the same value: no change


CATALOG = """
[configs.agent]
variants = [{ model = "a", weight = 50 }, { model = "b", weight = 50 }]
[prompts.support]
system = "You help."
user = "{{question}}"
"""


def _versions(store: Store) -> List[Tuple[Any, ...]]:
    return store.query(text("SELECT kind, key, version FROM versions ORDER BY kind, key, version"))


def test_a_catalog_loaded_by_both_replicas_makes_each_version_once(
        replicas: Tuple[Store, Store], tmp_path: Path) -> None:
    first, second = replicas
    path = tmp_path / "fallom.toml"
    path.write_text(CATALOG)
    catalogs = together(lambda: Catalog(str(path), first), lambda: Catalog(str(path), second))
    assert _versions(first) == [("config", "agent", 1), ("prompt", "support", 1)]
    assert [c.current().configs["agent"]["version"] for c in catalogs] == [1, 1]

    path.write_text(CATALOG.replace("You help.", "You help, briefly."))
    later = time.time() + 5  # the mtime moves on, however coarse the file system's clock
    os.utime(path, (later, later))
    seen = together(*(lambda c=c: c.current().prompts["support"]["version"] for c in catalogs))
    assert seen == [2, 2]
    assert _versions(second) == [("config", "agent", 1), ("prompt", "support", 1),
                                 ("prompt", "support", 2)]
    third = Catalog(str(path), first)  # a replica started after the edit
    assert third.current().prompts["support"]["version"] == 2
    assert len(_versions(first)) == 3
