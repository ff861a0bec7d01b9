"""``GET /api/overview`` on SQLite and PostgreSQL through a real ``fallom serve``: requests,
errors, p50/p95 latency, tokens and cost per minute (or hour), per model and per config,
from the rollups ingest keeps; a span sent twice counted once; retention takes its calls
out; revision 0004 makes the rollups of spans stored before it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import requests
from sqlalchemy import create_engine, text

from fallom.server._db import database
from fallom.server._rollups import percentile
from fallom.server._store import Store

from ._databases import db_url, postgres_db  # noqa: F401  (fixtures)
from ._serve_process import launch, stop

KEY = "overview-key"
HOUR = "since=2026-01-01T00:00:00Z&until=2026-01-01T01:00:00Z"


def call(n: int, minute: int, model: str, config: str, duration_ms: float,
         error: bool = False, day: str = "2026-01-01T00") -> Dict[str, Any]:
    """LLM call ``n`` (its own trace) at ``minute`` past the hour of ``day``."""
    return {"trace_id": f"{n:032x}", "span_id": f"{n:016x}", "name": "chat", "kind": "llm",
            "model": model, "config_key": config, "prompt_tokens": 1000,
            "completion_tokens": 100, "total_tokens": 1100,
            "start_time": f"{day}:{minute:02d}:{n % 60:02d}.000000Z",
            "duration_ms": duration_ms, "status": "ERROR" if error else "OK"}


# minute 5: 10 calls of gpt-4o (100..1000 ms, one error); minute 7: 4 calls of claude
CALLS = [call(n, 5, "gpt-4o-2024-08-06", "agent", 100.0 * n, error=n == 3)
         for n in range(1, 11)] + [call(n, 7, "claude", "bot", 50.0) for n in range(11, 15)]


class Served:
    def __init__(self, url: str) -> None:
        self.url = url

    def post(self, records: List[Dict[str, Any]]) -> Dict[str, Any]:
        reply = requests.post(f"{self.url}/v1/traces", json={"traces": records}, timeout=10,
                              headers={"Authorization": f"Bearer {KEY}"})
        assert reply.status_code == 200, reply.text
        return dict(reply.json())

    def get(self, path: str) -> requests.Response:
        return requests.get(f"{self.url}{path}", headers={"Authorization": f"Bearer {KEY}"},
                            timeout=10)

    def overview(self, query: str) -> Dict[str, Any]:
        reply = self.get(f"/api/overview?{query}")
        assert reply.status_code == 200, reply.text
        return dict(reply.json())


def serve(db: str, folder: Path, *args: str) -> Tuple[Any, Served]:
    catalog = folder / "fallom.toml"
    catalog.write_text('[prices."gpt-4o"]\ninput = 2.50\noutput = 10.00\n')
    proc, url = launch("--db", db, "--config", str(catalog), "--api-key", KEY, *args)
    return proc, Served(url)


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[Served]:  # noqa: F811
    proc, server = serve(db_url, tmp_path)
    yield server
    stop(proc)


def test_overview_counts_requests_errors_latency_tokens_and_cost(served: Served) -> None:
    assert served.post(CALLS)["stored"] == 14
    assert served.post(CALLS[:5])["stored"] == 0  # sent again: counted once
    found = served.overview(HOUR)
    assert (found["since"], found["until"], found["bucket_s"], found["prices"]) == (
        "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z", 60, True)
    total = found["totals"]
    gpt_cost = (10 * 1000 * 2.5 + 10 * 100 * 10) / 1e6
    assert {k: total[k] for k in ("requests", "errors", "error_rate", "input_tokens",
                                  "output_tokens", "total_tokens")} == {
        "requests": 14, "errors": 1, "error_rate": round(1 / 14, 4), "input_tokens": 14000,
        "output_tokens": 1400, "total_tokens": 15400}
    assert total["cost_usd"] == pytest.approx(gpt_cost)  # claude has no price: not counted
    # nearest rank of the 14 durations: p50 the 7th (300 ms), p95 the 14th (1000 ms), each
    # within the histogram's 12.2 %
    assert total["p50_ms"] == pytest.approx(300, rel=0.122)
    assert total["p95_ms"] == pytest.approx(1000, rel=0.122)

    series = found["series"]
    assert len(series) == 60
    assert [(i, point["requests"]) for i, point in enumerate(series) if point["requests"]] == [
        (5, 10), (7, 4)]
    assert series[5]["start"] == "2026-01-01T00:05:00Z"
    assert (series[5]["errors"], series[5]["error_rate"]) == (1, 0.1)
    assert series[7]["p50_ms"] == pytest.approx(50, rel=0.122)
    assert (series[7]["cost_usd"], series[0]["requests"], series[0]["p50_ms"]) == (None, 0, None)

    models = {row["model"]: row for row in found["by_model"]}
    assert (models["gpt-4o-2024-08-06"]["requests"], models["claude"]["requests"]) == (10, 4)
    assert models["gpt-4o-2024-08-06"]["cost_usd"] == pytest.approx(gpt_cost)
    assert models["claude"]["cost_usd"] is None
    configs = {row["config_key"]: row["requests"] for row in found["by_config"]}
    assert configs == {"agent": 10, "bot": 4}

    only = served.overview(HOUR + "&model=claude&config_key=bot")
    assert (only["totals"]["requests"], [r["model"] for r in only["by_model"]]) == (4, ["claude"])
    assert served.overview(HOUR + "&config_key=nobody")["totals"]["requests"] == 0


def test_long_ranges_read_hourly_rows_and_relative_times_are_taken(served: Served) -> None:
    now = datetime.now(timezone.utc)
    recent = []
    for n, hours in ((1, 2), (2, 30), (3, 100)):
        day = (now - timedelta(hours=hours)).strftime("%Y-%m-%dT%H")
        recent.append(call(n, 0, "gpt-4o", "agent", 200.0, day=day))
    served.post(recent)
    week = served.overview("since=7d")
    assert (week["bucket_s"], len(week["series"])) == (3 * 3600, len(week["series"]))
    assert len(week["series"]) <= 60
    assert week["totals"]["requests"] == 3
    day = served.overview("")  # 24 hours by default, in whole half hours
    assert (day["bucket_s"], day["totals"]["requests"]) == (1800, 1)
    assert served.overview("since=1h")["totals"]["requests"] == 0
    for query, name in (("since=yesterday", "since"), ("until=3x", "until")):
        reply = served.get(f"/api/overview?{query}")
        assert reply.status_code == 400
        assert reply.json()["error"].startswith(f"{name}:")
        assert "7d" in reply.json()["error"]


def test_retention_takes_calls_out_of_the_overview(db_url: str, tmp_path: Path) -> None:  # noqa: F811
    proc, server = serve(db_url, tmp_path)
    try:
        server.post(CALLS)
        assert server.overview(HOUR)["totals"]["requests"] == 14
    finally:
        stop(proc)
    proc, server = serve(db_url, tmp_path, "--retention", "30d")  # they are a year old
    try:
        deadline = datetime.now() + timedelta(seconds=20)
        while server.overview(HOUR)["totals"]["requests"] and datetime.now() < deadline:
            server.get("/api/traces")  # the sweep runs at start: wait for its pass
        found = server.overview(HOUR)
        assert (found["totals"]["requests"], found["by_model"]) == (0, [])
        assert server.get("/api/traces").json()["traces"] == []
    finally:
        stop(proc)


def test_revision_0004_makes_the_rollups_of_stored_spans(db_url: str, tmp_path: Path) -> None:  # noqa: F811
    from fallom.server._ingest import prepare

    store = Store(db_url)
    try:
        rows = [prepare(record)[0] for record in CALLS]
        store.add_rows([row for row in rows if row is not None])
    finally:
        store.close()
    made = create_engine(database(db_url).url)
    with made.begin() as connection:  # as a database of revision 0003 holds them
        connection.execute(text("DROP TABLE rollups"))
        connection.execute(text("UPDATE alembic_version SET version_num = '0003'"))
    made.dispose()
    proc, server = serve(db_url, tmp_path)
    try:
        found = server.overview(HOUR)
        assert (found["totals"]["requests"], found["totals"]["errors"]) == (14, 1)
        assert [p["requests"] for p in found["series"] if p["requests"]] == [10, 4]
    finally:
        stop(proc)


def test_the_percentile_of_a_histogram_is_within_its_stated_error() -> None:
    from fallom.server._rollups import BUCKETS, bucket_of

    for value in (1.0, 3.7, 99.0, 1234.5, 54321.0, 999_999.0):
        histogram = [0] * BUCKETS
        histogram[bucket_of(value)] = 1
        assert percentile(histogram, 0.5) == pytest.approx(value, rel=0.1221)
    assert percentile([0] * BUCKETS, 0.5) is None


def test_replicas_add_up_into_the_same_minute_once_each(postgres_db: str,  # noqa: F811
                                                        tmp_path: Path) -> None:
    from ._records import run_in_threads

    launched = [serve(postgres_db, tmp_path) for _ in range(2)]
    try:
        servers = [server for _, server in launched]
        # both replicas at once, each span of the minute sent to both
        run_in_threads(lambda i: servers[i % 2].post(CALLS[i % 14:i % 14 + 1]), 28)
        for server in servers:
            found = server.overview(HOUR)
            assert (found["totals"]["requests"], found["totals"]["input_tokens"]) == (14, 14000)
            assert [p["requests"] for p in found["series"] if p["requests"]] == [10, 4]
    finally:
        for proc, _ in launched:
            stop(proc)
