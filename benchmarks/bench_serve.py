"""``fallom serve`` at scale: ingest from 16 clients into SQLite, into PostgreSQL with one
replica and with two; reads of ``/api/traces`` (newest first, and with each filter) and of
``/api/traces/{id}``, p50 and p95, with 1,000,000 spans stored.

Every server is a real ``python -m fallom serve`` subprocess. PostgreSQL is
``--postgres URL``, else ``$FALLOM_TEST_POSTGRES_URL``, else one started here in a
temporary directory (tests/_postgres.py); each part gets a database of its own.

Ingest: OTLP/JSON as OpenTelemetry's exporters send it, batches of 50 spans of ~1.3 KB,
from 16 clients at once (the load Arize Phoenix 20.26 was measured with on this machine:
53-55 spans/s); then fallom's own gzip batches. Spans/s counts from the first request to
the last acknowledgement: a span is committed, and readable from every replica, before
its request is answered (checked after each run by reading traces back).

Reads: the database is filled through the store itself (``Store.add_rows``, what ingest
calls; far quicker than HTTP for a million spans): traces of 10 spans over 30 days, 20,000
sessions, 997 customers, 7 config keys, 4 models, 2 % errors. Then each listing is asked
``--reads`` times through HTTP, one after another, and the trace view for as many traces.
Target: p95 <= 100 ms for each, on both engines.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import _postgres  # noqa: E402

KEY = "bench-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
CLIENTS, SPANS_PER_BATCH, INGEST_SPANS = 16, 50, 20_000
SPANS_PER_TRACE = 10
DAY_S = 86_400


# -- servers and databases -----------------------------------------------------------------
@contextlib.contextmanager
def fallom_serve(db: str, *args: str) -> Iterator[str]:
    """A real ``fallom serve`` on ``db``: its URL; stopped (SIGINT, as Ctrl-C) on exit."""
    proc = subprocess.Popen([sys.executable, "-m", "fallom", "serve", "--port", "0", "--db", db,
                             "--api-key", KEY, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        yield next(line for line in proc.stdout if "FALLOM_TRACES_URL" in line
                   ).strip().split("=", 1)[1]
    finally:
        proc.terminate()
        proc.wait(30)


@contextlib.contextmanager
def postgres_server(given: Optional[str]) -> Iterator[str]:
    """The URL of a PostgreSQL server to make databases on."""
    url = given or os.environ.get(_postgres.ENV)
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="fallom-bench-pg-") as directory:
        url, data = _postgres.start(directory)
        try:
            yield url
        finally:
            _postgres.stop(data)


@contextlib.contextmanager
def new_database(engine: str, server: Optional[str], folder: str) -> Iterator[str]:
    """An empty database: a SQLite file in ``folder``, or a PostgreSQL database made on
    ``server`` and dropped after."""
    if engine == "sqlite":
        yield os.path.join(folder, f"{uuid.uuid4().hex[:8]}.db")
        return
    import psycopg
    from sqlalchemy.engine import make_url

    assert server is not None
    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- ingest ----------------------------------------------------------------------------------
def otlp_span(trace: int, span: int) -> Dict[str, Any]:
    """A span of a chat call as OpenTelemetry's GenAI conventions describe it, ~1.3 KB."""
    def text(key: str, value: str) -> Dict[str, Any]:
        return {"key": key, "value": {"stringValue": value}}

    start = 1_767_225_600_000_000_000 + span * 1_000_000
    return {"traceId": f"{trace:032x}", "spanId": f"{trace:08x}{span + 1:08x}",
            "parentSpanId": "" if span == 0 else f"{trace:08x}{1:08x}",
            "name": "chat gpt-4o-mini", "kind": 3, "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + 250_000_000), "status": {"code": 1},
            "attributes": [text("gen_ai.system", "openai"),
                           text("gen_ai.request.model", "gpt-4o-mini"),
                           text("session.id", f"session-{trace % 500}"),
                           text("gen_ai.prompt.0.content", "What is in plan 4? " * 22),
                           text("gen_ai.completion.0.content", "Plan 4 includes seats. " * 22),
                           {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "120"}},
                           {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "80"}}]}


def otlp_bodies() -> List[List[Tuple[bytes, Dict[str, str]]]]:
    """Each client's requests: OTLP/JSON, 10 spans a trace, 50 spans a request."""
    per_client = INGEST_SPANS // CLIENTS // SPANS_PER_BATCH
    bodies = []
    for client in range(CLIENTS):
        mine = []
        for batch in range(per_client):
            first = (client * per_client + batch) * SPANS_PER_BATCH
            spans = [otlp_span(1 + (first + i) // SPANS_PER_TRACE, (first + i) % SPANS_PER_TRACE)
                     for i in range(SPANS_PER_BATCH)]
            body = {"resourceSpans": [{"resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "bench"}}]},
                "scopeSpans": [{"scope": {"name": "bench"}, "spans": spans}]}]}
            mine.append((json.dumps(body).encode(), {"Content-Type": "application/json"}))
        bodies.append(mine)
    return bodies


def fallom_bodies() -> List[List[Tuple[bytes, Dict[str, str]]]]:
    """Each client's requests: fallom's own records, gzip batches of 50."""
    per_client = INGEST_SPANS // CLIENTS // SPANS_PER_BATCH
    bodies = []
    for client in range(CLIENTS):
        mine = []
        for batch in range(per_client):
            first = (client * per_client + batch) * SPANS_PER_BATCH
            records = [record(1 + (first + i) // SPANS_PER_TRACE, (first + i) % SPANS_PER_TRACE,
                              0.0) for i in range(SPANS_PER_BATCH)]
            mine.append((gzip.compress(json.dumps({"traces": records}).encode()),
                         {"Content-Type": "application/json", "Content-Encoding": "gzip"}))
        bodies.append(mine)
    return bodies


def ingest(urls: Sequence[str], bodies: List[List[Tuple[bytes, Dict[str, str]]]]) -> float:
    """Spans/s, 16 clients at once, client i sending to ``urls[i % len(urls)]``."""
    failures: List[str] = []

    def client(index: int) -> None:
        url = urls[index % len(urls)]
        with requests.Session() as session:
            for data, headers in bodies[index]:
                reply = session.post(f"{url}/v1/traces", data=data, timeout=120,
                                     headers={**AUTH, **headers})
                if reply.status_code != 200:
                    failures.append(f"{reply.status_code} {reply.text[:200]}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    assert not failures, failures[:3]
    spans = sum(len(b) for b in bodies) * SPANS_PER_BATCH
    for url in urls:  # every replica reads every span: the first trace and the last
        for trace in (1, spans // SPANS_PER_TRACE):
            found = requests.get(f"{url}/api/traces/{trace:032x}", headers=AUTH, timeout=30)
            assert len(found.json()["spans"]) == SPANS_PER_TRACE, found.text[:200]
    return spans / elapsed


def ingest_part(server: Optional[str], repeat: int) -> None:
    print(f"ingest: {INGEST_SPANS:,} spans from {CLIENTS} clients, batches of "
          f"{SPANS_PER_BATCH}, median of {repeat} runs", flush=True)
    loads: List[Tuple[str, Callable[[], List[List[Tuple[bytes, Dict[str, str]]]]]]] = [
        ("OTLP/JSON, ~1.3 KB spans", otlp_bodies), ("fallom gzip batches", fallom_bodies)]
    targets = [("SQLite", "sqlite", 1), ("PostgreSQL, 1 replica", "postgresql", 1),
               ("PostgreSQL, 2 replicas", "postgresql", 2)]
    for load, make in loads:
        bodies = make()
        for name, engine, replicas in targets:
            if engine == "postgresql" and server is None:
                continue
            rates = []
            for _ in range(repeat):
                with tempfile.TemporaryDirectory() as folder, \
                        new_database(engine, server, folder) as db, \
                        contextlib.ExitStack() as stack:
                    urls = [stack.enter_context(fallom_serve(db)) for _ in range(replicas)]
                    rates.append(ingest(urls, bodies))
            print(f"  {load:<26} {name:<24} {statistics.median(rates):>8,.0f} spans/s  "
                  f"(runs: {', '.join(f'{r:,.0f}' for r in rates)})", flush=True)


# -- reads at a million spans ----------------------------------------------------------------
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "gemini-2.0-flash")
NOW = 1_767_225_600.0  # 2026-01-01


def iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + \
        f".{int(seconds % 1 * 1e6):06d}Z"


def record(trace: int, span: int, started: float) -> Dict[str, Any]:
    """Span ``span`` of trace ``trace``: the root, then 9 calls of a model."""
    root = span == 0
    return {"trace_id": f"{trace:032x}", "span_id": f"{trace:08x}{span + 1:08x}",
            "parent_span_id": None if root else f"{trace:08x}{1:08x}",
            "name": f"workflow-{trace % 13}" if root else f"chat-{span}",
            "kind": "span" if root else "llm",
            "start_time": iso(started + span * 0.05), "end_time": iso(started + span * 0.05 + 0.04),
            "duration_ms": 40.0 + (trace * 7 + span) % 900,
            "status": "ERROR" if trace % 50 == 0 and span == 3 else "OK",
            "error_message": "rate limited" if trace % 50 == 0 and span == 3 else None,
            "session_id": f"session-{trace // 5}", "customer_id": f"customer-{trace % 997}",
            "config_key": f"agent-{trace % 7}",
            "model": None if root else MODELS[(trace + span) % len(MODELS)],
            "prompt_tokens": None if root else 100 + trace % 300,
            "completion_tokens": None if root else 50 + span * 3,
            "total_tokens": None if root else 150 + trace % 300 + span * 3,
            "input": None if root else {"messages": [{"role": "user",
                                                      "content": f"question {trace} " * 12}]},
            "output": None if root else f"answer {trace}-{span} " * 12,
            # a word of ~100 traces in 100,000, for a selective full-text search
            "attributes": {"app.topic": f"topic{trace % 1000}x"} if root else {}}


def fill(db: str, spans: int) -> float:
    """Store ``spans`` spans through the store (as ingest does), oldest first; seconds."""
    from fallom.server._ingest import prepare
    from fallom.server._store import Store

    store = Store(db)
    traces = spans // SPANS_PER_TRACE
    start = time.perf_counter()
    try:
        for first in range(1, traces + 1, 500):
            rows = []
            for trace in range(first, min(first + 500, traces + 1)):
                started = NOW - 30 * DAY_S * (1 - trace / traces)
                for span in range(SPANS_PER_TRACE):
                    row, reason = prepare(record(trace, span, started))
                    assert row is not None, reason
                    rows.append(row)
            store.add_rows(rows)
            done = (first + 499) * SPANS_PER_TRACE
            if done % 200_000 == 0:
                print(f"    {done:,} spans stored", flush=True)
    finally:
        store.close()
    return time.perf_counter() - start


def listings(traces: int) -> List[Tuple[str, str]]:
    """What the web UI and ``fallom traces`` ask: the first page, then each filter."""
    middle = traces // 2
    return [("newest first", "/api/traces"),
            ("oldest first", "/api/traces?order=asc"),
            ("session_id", f"/api/traces?session_id=session-{middle // 5}"),
            ("customer_id", "/api/traces?customer_id=customer-42"),
            ("config_key", "/api/traces?config_key=agent-3"),
            ("status=ERROR", "/api/traces?status=ERROR"),
            ("model", "/api/traces?model=claude-3-5-sonnet"),
            ("name", "/api/traces?name=workflow-7"),
            ("since (7 days)", f"/api/traces?since={iso(NOW - 7 * DAY_S)[:10]}"),
            ("q, a word of 100 traces", "/api/traces?q=topic42x"),
            ("q, a word of every trace", "/api/traces?q=question"),
            ("q, two words, prefixes", "/api/traces?q=quest+answ"),
            ("min_duration_ms", "/api/traces?min_duration_ms=900"),
            ("min_tokens", "/api/traces?min_tokens=4000"),
            ("min_spans", "/api/traces?min_spans=10"),
            ("page 20 (offset 950)", "/api/traces?offset=950"),
            ("sessions page", "/api/sessions"),
            ("overview (24 hours)", f"/api/overview?since={iso(NOW - DAY_S)}&until={iso(NOW)}"),
            ("overview (7 days)",
             f"/api/overview?since={iso(NOW - 7 * DAY_S)}&until={iso(NOW)}")]


def timed(url: str, path: str, times: int) -> Tuple[float, float]:
    """p50 and p95 in ms of ``times`` GETs, one after another (after one to warm up)."""
    took = []
    with requests.Session() as session:
        session.get(url + path, headers=AUTH, timeout=120).raise_for_status()
        for _ in range(times):
            start = time.perf_counter()
            reply = session.get(url + path, headers=AUTH, timeout=120)
            took.append((time.perf_counter() - start) * 1000)
            reply.raise_for_status()
    took.sort()
    return statistics.median(took), took[min(len(took) - 1, int(len(took) * 0.95))]


def reads_part(server: Optional[str], spans: int, reads: int, engines: Sequence[str]) -> None:
    traces = spans // SPANS_PER_TRACE
    for engine in engines:
        if engine == "postgresql" and server is None:
            continue
        with tempfile.TemporaryDirectory() as folder, new_database(engine, server, folder) as db:
            print(f"reads on {engine}: filling {spans:,} spans ({traces:,} traces)...",
                  flush=True)
            took = fill(db, spans)
            print(f"  filled in {took:.0f} s ({spans / took:,.0f} spans/s through the store)",
                  flush=True)
            with fallom_serve(db) as url:
                print(f"  {'GET':<26} {'p50 ms':>8} {'p95 ms':>8}  ({reads} requests each)")
                for name, path in listings(traces):
                    p50, p95 = timed(url, path, reads)
                    print(f"  {name:<26} {p50:>8.1f} {p95:>8.1f}", flush=True)
                samples = [1 + (traces - 1) * i // max(1, reads - 1) for i in range(reads)]
                took_ms = []
                with requests.Session() as session:
                    for trace in samples:
                        start = time.perf_counter()
                        reply = session.get(f"{url}/api/traces/{trace:032x}", headers=AUTH,
                                            timeout=120)
                        took_ms.append((time.perf_counter() - start) * 1000)
                        assert len(reply.json()["spans"]) == SPANS_PER_TRACE
                took_ms.sort()
                print(f"  {'/api/traces/{id}':<22} {statistics.median(took_ms):>8.1f} "
                      f"{took_ms[int(len(took_ms) * 0.95)]:>8.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("all", "ingest", "reads"), default="all")
    parser.add_argument("--postgres", help="a PostgreSQL server URL (default: "
                                           f"${_postgres.ENV}, else one started here)")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--spans", type=int, default=1_000_000, help="stored for the reads")
    parser.add_argument("--reads", type=int, default=50, help="requests per read measured")
    parser.add_argument("--repeat", type=int, default=3, help="ingest runs per target")
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), action="append",
                        help="the reads' engines (default both)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        server = None if args.no_postgres else stack.enter_context(
            postgres_server(args.postgres))
        if args.part in ("all", "ingest"):
            ingest_part(server, args.repeat)
        if args.part in ("all", "reads"):
            reads_part(server, args.spans, args.reads, args.engine or ["sqlite", "postgresql"])


if __name__ == "__main__":
    main()
