"""Every behaviour of fallom serve's store, on SQLite and on a real PostgreSQL alike:
ingest once by span id, the listing and each of its filters, a trace's spans, the
inheritance of a root's session, metrics, versions, assignments, evaluation runs, the
views of the web UI, retention, and the errors a person reads."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from sqlalchemy import text

from fallom.server import _views
from fallom.server._catalog import Catalog
from fallom.server._db import DatabaseURLError, StoreError, UnavailableError, database
from fallom.server._ingest import prepare
from fallom.server._store import Store, parse_retention, retention_text
from fallom.server._summaries import summarise_all

from ._databases import db_url, postgres_db  # noqa: F401  (fixtures)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:  # noqa: F811
    opened = Store(db_url)
    yield opened
    opened.close()


def span(i: int, trace: int = 1, **extra: Any) -> Dict[str, Any]:
    return {"trace_id": f"{trace:032x}", "span_id": f"{trace:08x}{i + 1:08x}",
            "name": f"span-{i}", "kind": "span",
            "start_time": f"2026-01-01T00:{trace % 60:02d}:{i % 60:02d}.000000Z",
            "status": "OK", "duration_ms": 1.5, **extra}


def add(store: Store, *records: Dict[str, Any]) -> int:
    rows = []
    for record in records:
        row, reason = prepare(record)
        assert row is not None, reason
        rows.append(row)
    return store.add_rows(rows)


def ids(listing: List[Dict[str, Any]]) -> List[int]:
    return [int(t["trace_id"], 16) for t in listing]


# -- ingest -----------------------------------------------------------------------------------
def test_a_span_is_stored_once_by_its_id_however_often_it_is_sent(store: Store) -> None:
    batch = [span(i) for i in range(5)]
    assert add(store, *batch) == 5
    assert add(store, *batch, span(5)) == 1  # a retried batch: only the new span counts
    assert add(store, span(6), span(6)) == 1  # twice in one batch: once
    (listed,) = store.traces()
    assert listed["spans"] == 7
    assert len(store.trace(f"{1:032x}")) == 7


def test_a_trace_s_summary_is_over_all_its_spans(store: Store) -> None:
    add(store, span(0, parent_span_id=None, name="agent", duration_ms=40.0,
                    session_id="s-1", customer_id="u-1", config_key="cfg"),
        span(1, parent_span_id=f"{1:08x}{1:08x}", model="gpt-4o", total_tokens=7,
             duration_ms=90.0),
        span(2, parent_span_id=f"{1:08x}{1:08x}", model="claude", total_tokens=5,
             status="ERROR", error_message="boom"),
        span(3, trace=2, parent_span_id=f"{2:08x}{1:08x}"),  # its root never came
        span(4, trace=2, parent_span_id=f"{2:08x}{1:08x}", duration_ms=3.0))
    first, second = store.traces(oldest_first=True)
    assert first == {
        "trace_id": f"{1:032x}", "start_time": "2026-01-01T00:01:00.000000Z",
        "total_tokens": 12, "status": "ERROR", "spans": 3, "root_name": "agent",
        "duration_ms": 40.0, "session_id": "s-1", "customer_id": "u-1", "config_key": "cfg",
        "models": ["claude", "gpt-4o"], "error_message": "boom"}
    # no root: the longest span's duration; no tokens counted: null, not 0
    assert (second["root_name"], second["duration_ms"], second["total_tokens"]) == (
        None, 3.0, None)
    assert ids(store.traces()) == [2, 1]


def test_pages_come_newest_first_and_without_a_start_time_last(store: Store) -> None:
    for trace in range(1, 8):
        add(store, span(0, trace=trace))
    undated = span(0, trace=99)
    del undated["start_time"]
    add(store, undated)
    assert ids(store.traces()) == [7, 6, 5, 4, 3, 2, 1, 99]
    assert ids(store.traces(oldest_first=True)) == [99, 1, 2, 3, 4, 5, 6, 7]
    assert ids(store.traces(limit=3, offset=2)) == [5, 4, 3]
    assert store.traces(limit=0) == []


def test_a_child_takes_the_root_s_session_and_customer_in_either_order(store: Store) -> None:
    trace = f"{5:032x}"
    root = f"{5:08x}{1:08x}"
    add(store, span(1, trace=5, parent_span_id=root),  # children first: the root ends last
        span(2, trace=5, parent_span_id=root, session_id=trace))
    add(store, span(0, trace=5, session_id="s-otel", customer_id="u-otel"))
    add(store, span(3, trace=5, parent_span_id=root, customer_id="u-own"))  # after the root
    spans = {s["name"]: s for s in store.trace(trace)}
    assert {name: (s.get("session_id"), s.get("customer_id")) for name, s in spans.items()} == {
        "span-0": ("s-otel", "u-otel"), "span-1": ("s-otel", "u-otel"),
        "span-2": ("s-otel", "u-otel"), "span-3": ("s-otel", "u-own")}
    assert ids(store.traces(session_id="s-otel")) == [5]
    assert ids(store.traces(customer_id="u-own")) == [5]
    assert store.traces(session_id=trace) == []  # the defaulted session is gone
    shown = _views.session(store, "s-otel")  # the sessions page counts the children too
    assert shown is not None
    assert (shown["traces"], shown["spans"], shown["customer_id"]) == (1, 4, "u-own")
    assert _views.session(store, trace) is None


def _snapshot(store: Store) -> Any:
    """What the pages show: the listing, a few filters, the sessions."""
    return (store.traces(limit=1000), [ids(store.traces(session_id=f"s-{k}")) for k in range(3)],
            ids(store.traces(search="step-1")), ids(store.traces(model="m1")),
            sorted(map(str, _views.sessions(store, limit=1000))))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_summaries_kept_batch_by_batch_equal_those_made_from_all_spans(
        store: Store, seed: int) -> None:
    # a trace known to the store is brought up to date from each batch's spans alone
    # (unless its root came): whatever the order and the batches, the same figures
    rng = random.Random(seed)
    records = []
    for trace in range(1, 13):
        for i in range(rng.randint(1, 30)):
            records.append(span(i, trace=trace, name=f"step-{rng.randint(0, 9)}",
                                parent_span_id=None if i == 0 else f"{trace:08x}{1:08x}",
                                session_id=rng.choice([None, f"{trace:032x}", "s-0", "s-1",
                                                       "s-2"]),
                                customer_id=rng.choice([None, "u-1", "u-2"]),
                                config_key=rng.choice([None, "c"]),
                                model=rng.choice([None, "m1", "m2"]),
                                status=rng.choice(["OK", "ERROR", None]),
                                total_tokens=rng.choice([None, rng.randint(0, 99)]),
                                duration_ms=rng.choice([None, rng.random() * 100]),
                                start_time=f"2026-01-01T00:{rng.randint(0, 59):02d}:00Z"))
    rng.shuffle(records)
    sent: List[Dict[str, Any]] = []
    while records:
        size = rng.randint(1, 25)
        batch, records = records[:size], records[size:]
        add(store, *batch, *rng.sample(sent, min(2, len(sent))))  # with a few sent again
        sent += batch
    kept = _snapshot(store)
    with store.engine.connect().execution_options(fallom_write=True) as connection, \
            connection.begin():
        summarise_all(connection)
    assert _snapshot(store) == kept


# -- filters ----------------------------------------------------------------------------------
@pytest.fixture
def filled(store: Store) -> Store:
    add(store, span(0, trace=1, session_id="s-a", customer_id="u-1", config_key="c1",
                    model="gpt-4o", name="Plan trip", total_tokens=100, duration_ms=900.0),
        span(1, trace=1, model="claude", name="lookup_50%", parent_span_id=f"{1:08x}{1:08x}"))
    add(store, span(0, trace=2, session_id="s-b", customer_id="u-1", config_key="c2",
                    model="gpt-4o-mini", name="answer", status="ERROR", total_tokens=3))
    add(store, span(0, trace=3, session_id="s-b", customer_id="u-2", config_key="c1",
                    name="answer again", duration_ms=20.0),
        span(1, trace=3, name="x", parent_span_id=f"{3:08x}{1:08x}"),
        span(2, trace=3, name="y", parent_span_id=f"{3:08x}{1:08x}"))
    return store


@pytest.mark.parametrize(("filters", "expected"), [
    ({}, [3, 2, 1]),
    ({"session_id": "s-b"}, [3, 2]),
    ({"customer_id": "u-1"}, [2, 1]),
    ({"config_key": "c1"}, [3, 1]),
    ({"model": "claude"}, [1]),  # any span's model
    ({"model": "gpt-4"}, []),  # equal, not a prefix
    ({"customer_id": "u-1", "config_key": "c1"}, [1]),
    ({"session_id": "s-b", "model": "gpt-4o-mini", "status": "ERROR"}, [2]),
    ({"status": "ERROR"}, [2]),
    ({"status": "OK"}, [3, 1]),
    ({"name": "ANSWER"}, [3, 2]),  # the root's name, ASCII case ignored
    ({"name": "lookup"}, []),  # a child's name is not the trace's name
    ({"search": "lookup_50%"}, [1]),  # any span's words; % and _ are no wildcards
    ({"search": "lookup_6"}, []),  # words match by prefix: lookup_5 would find lookup_50
    ({"search": "again"}, [3]),
    ({"search": "LOOKUP"}, [1]),
    ({"since": "2026-01-01T00:02:00Z"}, [3, 2]),
    ({"until": "2026-01-01T00:02:00Z"}, [1]),
    ({"since": "2026-01-01T01:02:00+01:00", "until": "2026-01-01"}, []),
    ({"min_duration_ms": 900}, [1]),
    ({"min_tokens": 4}, [1]),
    ({"min_spans": 3}, [3]),
    ({"session_id": "", "model": ""}, [3, 2, 1]),  # an empty filter is no filter
])
def test_each_filter_picks_traces(filled: Store, filters: Dict[str, Any],
                                  expected: List[int]) -> None:
    assert ids(filled.traces(**filters)) == expected


def test_name_filters_ignore_ascii_case_only_on_both_engines(store: Store) -> None:
    add(store, span(0, trace=1, name="\u00dcber Plan"), span(1, trace=1, name="Stra\u00dfe",
                                                            parent_span_id=f"{1:08x}{1:08x}"))
    assert ids(store.traces(name="\u00dcBER PLAN")) == [1]
    assert ids(store.traces(search="stra\u00dfe")) == [1]
    assert store.traces(name="\u00fcber") == []  # as SQLite's LIKE: only A-Z fold
    assert ids(store.traces(search="STRASSE")) == [1]  # full text folds case fully (issue 29)


def test_a_filter_picks_the_trace_and_the_summary_still_counts_every_span(filled: Store) -> None:
    (trace,) = filled.traces(model="claude")
    assert (trace["spans"], trace["models"], trace["total_tokens"]) == (
        2, ["claude", "gpt-4o"], 100)


def test_a_since_that_is_not_a_time_is_refused_by_name(store: Store) -> None:
    with pytest.raises(ValueError, match="not an ISO 8601"):
        store.traces(since="yesterday")


def test_values_too_long_for_an_index_entry_are_stored_and_found(store: Store) -> None:
    # PostgreSQL refuses B-tree entries over ~2.7 kB: such ids must still be stored
    long_session, long_model = "s" * 10_000, "m" * 3000 + "\u00e9" * 2000
    names = [f"step {i} " + "n" * 100 for i in range(60)]  # more names than a summary keeps
    assert add(store, span(0, trace=4, session_id=long_session, model=long_model),
               *(span(i + 1, trace=4, name=name) for i, name in enumerate(names))) == 61
    add(store, span(0, trace=5, session_id=long_session[:-1] + "t"))
    assert ids(store.traces(session_id=long_session)) == [4]
    assert ids(store.traces(model=long_model)) == [4]
    assert ids(store.traces(search="step 59 ")) == [4]
    assert store.traces(search="step 60 ") == []


def test_a_nul_character_is_stored_and_read_back(store: Store) -> None:
    add(store, span(0, trace=6, name="a\x00b", session_id="s\x00"))
    (listed,) = store.traces(search="a")
    assert listed["trace_id"] == f"{6:032x}"
    (stored,) = store.trace(f"{6:032x}")
    assert (stored["name"], stored["session_id"]) == ("a\x00b", "s\x00")  # the record is whole


# -- metrics, assignments, versions, runs ---------------------------------------------------
def test_the_latest_value_of_each_metric_wins_and_a_resend_changes_nothing(store: Store) -> None:
    assert store.set_metrics("s-1", "agent", {"score": "1", "label": '"a"'}) == 2
    assert store.set_metrics("s-1", "agent", {"score": "1", "label": '"a"'}) == 0
    first = store.metrics(["s-1"])["s-1"]["agent"]["score"]["updated_at"]
    assert store.set_metrics("s-1", "agent", {"score": "2"}) == 1
    found = store.metrics(["s-1", "nobody"])
    assert {field: v["value"] for field, v in found["s-1"]["agent"].items()} == {
        "score": 2, "label": "a"}
    assert found["s-1"]["agent"]["score"]["updated_at"] >= first
    assert found["s-1"]["agent"]["label"]["updated_at"] == first
    assert "nobody" not in found
    many = [f"s-{i}" for i in range(1200)]  # more than one statement's parameters
    assert len(store.metrics(many)) == 1


def test_an_assignment_is_kept_once_per_session_with_its_latest_model(store: Store) -> None:
    store.add_assignment({"config_key": "agent", "config_version": 1, "session_id": "s",
                          "assigned_model": "a"})
    store.add_assignment({"config_key": "agent", "config_version": 1, "session_id": "s",
                          "assigned_model": "b"})
    assert store.assignments() == [("agent", "1", "s", "b")]


def test_a_body_gets_a_new_version_only_when_it_changes(store: Store) -> None:
    assert store.version_of("config", "agent", {"b": 1, "a": 2}) == 1
    assert store.version_of("config", "agent", {"b": 1, "a": 2}) == 1
    assert store.version_of("config", "agent", {"a": 2, "b": 1}) == 2  # key order is kept
    assert store.version_of("prompt", "agent", {"a": 2, "b": 1}) == 1  # per kind
    assert list(store.version("config", "agent", 1) or {}) == ["b", "a"]
    assert store.version("config", "agent", 3) is None
    assert store.latest_version("config", "agent") == (2, {"a": 2, "b": 1})
    assert store.latest_version("config", "nothing") is None


def test_runs_are_listed_newest_first_and_read_back_whole(store: Store) -> None:
    head = {"name": "r", "description": None, "judge_model": "j", "dataset_size": 2,
            "summary": {"metrics": {"tone": {"average": 0.5}}}}
    first = store.add_run(head, [{"input": "a", "score": 1}, {"input": "b", "score": 0}])
    second = store.add_run({**head, "name": "r2"}, [{"input": "c"}])
    assert [r["name"] for r in store.runs()] == ["r2", "r"]
    assert [r["name"] for r in store.runs(limit=1, offset=1)] == ["r"]
    assert (first["items"], first["metrics"]) == (2, {"tone": {"average": 0.5}})
    whole = store.run(first["run_id"])
    assert whole is not None
    assert [item["input"] for item in whole["results"]] == ["a", "b"]
    assert store.run(second["run_id"] + "x") is None


# -- the views of the web UI ------------------------------------------------------------------
def test_sessions_sum_their_traces_and_metrics_in_plain_numbers(filled: Store) -> None:
    filled.set_metrics("s-b", "c1", {"csat": "4"})
    filled.set_metrics("s-only-metrics", "c1", {"csat": "5"})
    sessions = {s["session_id"]: s for s in _views.sessions(filled)}
    assert set(sessions) == {"s-a", "s-b", "s-only-metrics"}
    b = sessions["s-b"]
    assert (b["traces"], b["spans"], b["total_tokens"], b["errors"]) == (2, 4, 3, 1)
    assert all(type(b[k]) is int for k in ("traces", "spans", "total_tokens", "errors"))
    assert b["metrics"]["c1"]["csat"]["value"] == 4
    assert sessions["s-only-metrics"]["traces"] == 0
    assert [s["session_id"] for s in _views.sessions(filled, customer_id="u-2")] == ["s-b"]
    one = _views.session(filled, "s-a")
    assert one is not None
    assert one["spans"] == 2


def test_experiments_and_prompts_read_the_stored_calls(store: Store, tmp_path: Path) -> None:
    catalog_file = tmp_path / "fallom.toml"
    catalog_file.write_text('[configs.agent]\nvariants = [{ model = "m1", weight = 100 }]\n'
                            '[prompts.p]\nsystem = "S"\nuser = "U"\n')
    catalog = Catalog(str(catalog_file), store)
    store.add_assignment({"config_key": "agent", "config_version": 1, "session_id": "s-1",
                          "assigned_model": "m1"})
    add(store, span(0, trace=9, session_id="s-1", kind="llm", model="m1", duration_ms=10.0,
                    total_tokens=4, prompt_key="p", prompt_version=1))
    found = _views.experiments(store, catalog)
    (variant,) = found["configs"][0]["variants"]
    assert (variant["sessions"], variant["llm_calls"], variant["p50_ms"]) == (1, 1, 10.0)
    (prompt_test,) = found["prompt_tests"]
    assert (prompt_test["prompt_key"], prompt_test["llm_calls"]) == ("p", 1)
    (prompt,) = _views.prompts(store, catalog)
    assert (prompt["key"], prompt["current_version"], len(prompt["versions"])) == ("p", 1, 1)


# -- retention --------------------------------------------------------------------------------
def test_expire_deletes_old_traces_in_bounded_batches_while_ingest_goes_on(store: Store) -> None:
    for trace in range(1, 26):  # 25 old traces
        add(store, span(0, trace=trace, session_id="s-old"), span(1, trace=trace))
    add(store, span(0, trace=100, start_time="2027-06-01T00:00:00Z"))
    assert store.expire("2027-01-01", batch=10) == 10  # one transaction, ten traces
    assert add(store, span(0, trace=101, start_time="2027-06-02T00:00:00Z",
                           session_id="s-new")) == 1
    assert store.expire("2027-01-01", batch=10) == 10
    assert store.expire("2027-01-01", batch=10) == 5
    assert store.expire("2027-01-01", batch=10) == 0
    assert ids(store.traces()) == [101, 100]
    assert store.trace(f"{3:032x}") == []
    assert [s["session_id"] for s in _views.sessions(store)] == ["s-new"]
    assert store.traces(session_id=None, oldest_first=True)[0]["trace_id"] == f"{100:032x}"


def test_the_retention_thread_deletes_what_is_older_than_it_keeps(db_url: str) -> None:  # noqa: F811
    store = Store(db_url, retention=parse_retention("2s"))  # a pass every second
    try:
        add(store, span(0, trace=1, start_time="2020-01-01T00:00:00Z"),
            span(0, trace=2, start_time="2999-01-01T00:00:00Z"))
        store.swept.clear()
        assert store.swept.wait(10)  # a pass ran after those were stored...
        store.swept.clear()
        assert store.swept.wait(10)  # ...and finished
        assert ids(store.traces()) == [2]
    finally:
        store.close()


@pytest.mark.parametrize(("given", "seconds", "said"), [
    ("30d", 30 * 86400, "30 days"), ("12h", 43200, "12 hours"), ("1w", 604800, "1 week"),
    ("90m", 5400, "90 minutes"), ("45 S", 45, "45 seconds")])
def test_a_retention_is_a_number_and_a_unit(given: str, seconds: float, said: str) -> None:
    assert parse_retention(given) == seconds
    assert retention_text(seconds) == said


@pytest.mark.parametrize("given", ["30", "0d", "-1d", "1.5d", "30 days", "d"])
def test_a_retention_without_a_unit_is_refused_with_the_forms(given: str) -> None:
    with pytest.raises(ValueError, match="such as 30d, 12h or 2w"):
        parse_retention(given)


# -- what a person reads when something is wrong --------------------------------------------
@pytest.mark.parametrize("given", ["mysql://u@h/db", "http://localhost:5432/x", "sqlite://"])
def test_a_wrong_scheme_names_the_accepted_ones(given: str) -> None:
    with pytest.raises(DatabaseURLError) as refused:
        database(given)
    assert "postgresql://USER@HOST:PORT/DB" in str(refused.value)
    assert "sqlite:///PATH" in str(refused.value)


@pytest.mark.parametrize(("given", "kind", "shown"), [
    ("traces.db", "sqlite", "traces.db"), ("sqlite:///rel/t.db", "sqlite", "rel/t.db"),
    ("sqlite:////abs/t.db", "sqlite", "/abs/t.db"),
    ("postgres://u:sekret@db.example:5433/f", "postgresql", "postgresql://u@db.example:5433/f"),
    ("postgresql://u@/f?host=/run/pg", "postgresql", "postgresql://u@/f?host=%2Frun%2Fpg")])
def test_each_url_form_is_read_and_shown_without_its_password(given: str, kind: str,
                                                               shown: str) -> None:
    found = database(given)
    assert (found.kind, found.shown) == (kind, shown)
    assert found.max_workers == (1 if kind == "sqlite" else None)


def test_the_environment_names_the_database_when_no_flag_does(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALLOM_DATABASE_URL", "postgresql://u@h:1/x")
    assert database(None, default_path="d.db").host == "h:1"
    assert database("other.db", default_path="d.db").path == "other.db"
    monkeypatch.delenv("FALLOM_DATABASE_URL")
    assert database(None, default_path="d.db").path == "d.db"


def test_an_unreachable_postgresql_is_named_by_host_never_by_password() -> None:
    with pytest.raises(UnavailableError) as refused:
        Store("postgresql://fallom:sekret-pw@127.0.0.1:1/fallom")
    said = str(refused.value)
    assert "127.0.0.1:1" in said
    assert "sekret" not in said
    assert "\n" not in said


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello, this is not a database " * 100)
    with pytest.raises(StoreError, match=f"cannot use {notes} as the database"):
        Store(str(notes))


def test_a_database_gone_while_serving_is_unavailable_then_recovers(postgres_db: str) -> None:  # noqa: F811
    store = Store(postgres_db)
    try:
        add(store, span(0))
        with store.engine.connect() as admin:  # what a restart does to every open connection
            admin.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
            admin.commit()
        assert add(store, span(1)) == 1  # the pool found its connections dead and made new ones
    finally:
        store.close()


# -- the listing's query plan -----------------------------------------------------------------
def _plan(store: Store, **filters: Any) -> str:
    statement = store.listing(**filters).compile(store.engine,
                                                 compile_kwargs={"literal_binds": True})
    return _explained(store, str(statement))


def _explained(store: Store, statement: str) -> str:
    with store.engine.connect() as connection:
        if store.db.kind == "sqlite":
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}").all()
            return "\n".join(str(row[-1]) for row in rows)
        connection.exec_driver_sql("SET enable_seqscan = off")  # as on a big table
        connection.exec_driver_sql("SET enable_sort = off")
        return "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}"))


@pytest.mark.parametrize(("filters", "index"), [
    ({}, "traces_start"), ({"oldest_first": True}, "traces_start"),
    ({"since": "2026-01-01"}, "traces_start"), ({"status": "ERROR"}, "traces_errors"),
    ({"session_id": "s"}, "trace_keys_value"), ({"customer_id": "u"}, "trace_keys_value"),
    ({"config_key": "c"}, "trace_keys_value"), ({"model": "m", "status": "OK"},
                                                "trace_keys_value")])
def test_the_listing_reads_an_index_in_order_and_sorts_nothing(
        store: Store, filters: Dict[str, Any], index: str) -> None:
    plan = _plan(store, **filters)
    assert index in plan, plan
    for sorting in ("TEMP B-TREE", "Sort", "Seq Scan on traces"):
        assert sorting not in plan, plan


def test_the_sessions_page_reads_its_index_in_order_and_sorts_nothing(store: Store) -> None:
    statement = _views._ALL.format(where="1 = 1").replace(":limit", "50").replace(":offset", "0")
    plan = _explained(store, statement)
    assert "sessions_activity" in plan, plan
    for sorting in ("TEMP B-TREE", "Sort", "Seq Scan"):
        assert sorting not in plan, plan


def test_without_its_index_the_listing_plan_fails_the_check(store: Store) -> None:
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DROP INDEX traces_start")
    plan = _plan(store)
    assert "TEMP B-TREE" in plan or "Sort" in plan, plan

