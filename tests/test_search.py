"""Full-text search (``q``) and relative times (``since``/``until``) of ``/api/traces``, on
SQLite and on PostgreSQL: what a person typing in the search box finds, what they may
type without breaking anything, and that the index follows ingest, retention and
migrations."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Iterator, List

import pytest
import requests
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from fallom.server import _store, migrations
from fallom.server._db import database, engine
from fallom.server._ingest import prepare
from fallom.server._search import matched_ids
from fallom.server._store import Store
from fallom.server._summaries import summarise_all

from . import _serve_process as serve_process
from ._databases import ENGINES, db_url, drop_postgres_database, new_postgres_database  # noqa: F401
from .test_store_engines import add, ids

KEY = "search-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def llm_call(trace: int, *, question: str, answer: str, start: str = "2026-01-01T00:00:00Z",
             attributes: Dict[str, Any] | None = None, name: str = "chat gpt-4o",
             span: int = 1) -> Dict[str, Any]:
    """An LLM span as fallom's provider wrappers send it: request and response in
    ``fallom.raw.*`` (the messages a list of chat messages), model, tokens."""
    request = {"model": "gpt-4o", "messages": [
        {"role": "system", "content": "You are a support bot."},
        {"role": "user", "content": question}]}
    return {"trace_id": f"{trace:032x}", "span_id": f"{trace:08x}{span:08x}", "name": name,
            "kind": "llm", "model": "gpt-4o", "start_time": start, "status": "OK",
            "duration_ms": 12.0, "session_id": f"s-{trace}",
            "attributes": {"fallom.raw.request": json.dumps(request),
                           "fallom.raw.response": json.dumps({"text": answer}),
                           **(attributes or {})}}


def captured(trace: int, *, given: Any, returned: Any, name: str = "agent-run",
             start: str = "2026-01-01T00:00:00Z") -> Dict[str, Any]:
    """A span of a decorated function as fallom 0.2.7 sends it: input and output fields."""
    return {"trace_id": f"{trace:032x}", "span_id": f"{trace:08x}{0:08x}", "name": name,
            "kind": "span", "start_time": start, "status": "OK", "duration_ms": 30.0,
            "input": given, "output": returned}


RECORDS = [
    llm_call(1, question="What is the Refund policy for Café orders?",
             answer="Refunds are possible within 30 days.",
             attributes={"app.ticket": "TCK-991", "gen_ai.response.finish_reasons": ["stop"]}),
    llm_call(2, question="Where is my parcel?", answer="It ships from Zürich tomorrow.",
             name="lookup_shipment", start="2026-01-02T00:00:00Z"),
    captured(3, given={"order_id": 7731, "note": "Straße unknown"}, returned="escalated",
             start="2026-01-03T00:00:00Z"),
    # sent with capture off: no input, no output; its words are not in any record
    {"trace_id": f"{4:032x}", "span_id": f"{4:08x}{1:08x}", "name": "private-call",
     "kind": "llm", "start_time": "2026-01-04T00:00:00Z", "status": "OK"},
]


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:  # noqa: F811
    opened = Store(db_url)
    add(opened, *RECORDS)
    yield opened
    opened.close()


@pytest.mark.parametrize(("query", "expected"), [
    ("refund", [1]),  # a word of the input (a user message)
    ("tomorrow", [2]),  # of the output
    ("tck-991", [1]), ("stop", [1]),  # of attribute values
    ("lookup_shipment", [2]), ("shipment", [2]),  # of a span name, or a word of it
    ("7731", [3]), ("escalated", [3]),  # a decorated function's arguments and result
    ("refund pol", [1]),  # each word a prefix ("Refund policy"); all of them needed
    ("refund parcel", []), ("parcel zur", [2]),
    ("REFUND", [1]), ("cafe", [1]), ("CAFÉ", [1]), ("zurich", [2]), ("strasse", [3]),
    ("gpt", [2, 1]), ("support bot", [2, 1]),  # the model; the system message
    ("order_id", []), ("role", []), ("messages", []),  # JSON keys are not text
    ("fallom", []),  # nor the fallom.raw.* attributes' names
    ("private", [4]), ("nowhere", []), ("refundx", []),
])
def test_a_word_of_a_name_input_output_or_attribute_finds_its_trace(
        store: Store, query: str, expected: List[int]) -> None:
    assert ids(store.traces(search=query)) == expected


def test_search_combines_with_every_other_filter_newest_first_and_paged(store: Store) -> None:
    add(store, *(llm_call(10 + i, question=f"refund number {i}", answer="ok",
                          start=f"2026-02-{i + 1:02d}T00:00:00Z") for i in range(5)))
    assert ids(store.traces(search="refund")) == [14, 13, 12, 11, 10, 1]
    assert ids(store.traces(search="refund", limit=2, offset=1)) == [13, 12]
    assert ids(store.traces(search="refund", session_id="s-12")) == [12]
    assert ids(store.traces(search="refund", until="2026-02-02")) == [10, 1]
    assert ids(store.traces(search="refund", oldest_first=True, limit=2)) == [1, 10]


def test_common_words_are_read_trace_by_trace_with_the_same_answer(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    add(store, *(llm_call(10 + i, question="refund please", answer="ok",
                          start=f"2026-02-{i + 1:02d}T00:00:00Z") for i in range(5)))
    few = [ids(store.traces(search=q, **f)) for q in ("refund", "ok refund", "zzz")
           for f in ({}, {"status": "OK"}, {"session_id": "s-11"})]
    monkeypatch.setattr(_store, "COMMON", 0)  # every word "common": the other plan
    assert [ids(store.traces(search=q, **f)) for q in ("refund", "ok refund", "zzz")
            for f in ({}, {"status": "OK"}, {"session_id": "s-11"})] == few


def test_a_span_sent_again_is_indexed_once_and_retention_removes_its_words(
        store: Store) -> None:
    assert add(store, RECORDS[0], RECORDS[0]) == 0
    count = "SELECT count(*) FROM span_search WHERE trace_id = :t"
    assert store.query(count, {"t": f"{1:032x}"}) == [(1,)]
    assert store.query(count, {"t": f"{4:032x}"}) == [(1,)]  # the name only
    assert store.expire("2026-01-02T12:00:00Z") == 2
    assert store.query(count, {"t": f"{1:032x}"}) == [(0,)]
    assert store.traces(search="refund") == []
    assert ids(store.traces(search="escalated")) == [3]


def test_the_words_of_a_huge_output_are_capped(store: Store) -> None:
    words = " ".join(f"w{i:07d}" for i in range(20_000))  # 180 KB of distinct words
    add(store, captured(20, given="start", returned=words + " lastword"))
    assert ids(store.traces(search="w0000000")) == [20]
    assert store.traces(search="lastword") == []  # past the 32 KB a span keeps
    (size,) = store.query("SELECT count(*) FROM span_search WHERE trace_id = :t",
                          {"t": f"{20:032x}"})[0]
    assert size == 1


# -- through HTTP ----------------------------------------------------------------------------
@pytest.fixture(params=ENGINES, scope="module")
def served(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``fallom serve`` on each engine, the records posted to it."""
    if request.param == "sqlite":
        db, dropped = str(tmp_path_factory.mktemp("search") / "t.db"), None
    else:
        db = dropped = new_postgres_database(request.getfixturevalue("postgres_url"))
    proc, url = serve_process.launch("--db", db, "--api-key", KEY)
    try:
        now = datetime.now(timezone.utc)
        recent = [llm_call(30, question="recent refund", answer="ok",
                           start=_iso(now - timedelta(minutes=5))),
                  llm_call(31, question="refund of yesterday", answer="ok",
                           start=_iso(now - timedelta(hours=30)))]
        posted = requests.post(f"{url}/v1/traces", json={"traces": RECORDS + recent},
                               headers=AUTH, timeout=10)
        assert posted.status_code < 300, posted.text
        yield url
    finally:
        serve_process.stop(proc)
        if dropped:
            drop_postgres_database(dropped)


def listed(url: str, **params: str) -> requests.Response:
    return requests.get(f"{url}/api/traces", params=params, headers=AUTH, timeout=10)


HOSTILE = ['"', '""', "*", "refund*", "NEAR(", "NEAR(refund parcel, 2)", ":*", "refund:*",
           "&|!", "!refund", "'", "''", "a'b", "refund OR parcel", "refund AND", "-refund",
           "^refund", "(", ")", "{}", "\\", "%", "_", "x" * 10_000, "refund " * 2000,
           "日本語のテキスト", "😀", "😀 refund", "\u0000", "\u202e", "<script>", "col:refund"]


@pytest.mark.parametrize("query", HOSTILE)
def test_whatever_is_typed_the_answer_is_200(served: str, query: str) -> None:
    found = listed(served, q=query)
    assert found.status_code == 200, found.text
    assert isinstance(found.json()["traces"], list)


def test_http_search_and_a_query_without_words_is_no_filter(served: str) -> None:
    assert ids(listed(served, q="refund pol").json()["traces"]) == [1]
    assert ids(listed(served, q="Refund").json()["traces"]) == [30, 31, 1]
    everything = ids(listed(served).json()["traces"])
    assert len(everything) == 6
    for blank in ("", "   ", "*", "&|!", "😀"):
        assert ids(listed(served, q=blank).json()["traces"]) == everything


@pytest.mark.parametrize(("params", "expected"), [
    ({"since": "1h"}, [30]), ({"since": "15m"}, [30]), ({"since": "2d"}, [30, 31]),
    ({"since": "24h", "q": "refund"}, [30]), ({"until": "1h", "q": "refund"}, [31, 1]),
    ({"since": "1w", "until": "60m"}, [31]), ({"since": "3600s"}, [30]),
    ({"since": "2026-01-03"}, [30, 31, 4, 3]),  # ISO 8601 as before
])
def test_relative_since_and_until_through_http(served: str, params: Dict[str, str],
                                               expected: List[int]) -> None:
    found = listed(served, **params)
    assert found.status_code == 200, found.text
    assert ids(found.json()["traces"]) == expected


@pytest.mark.parametrize(("name", "value"), [
    ("since", "yesterday"), ("since", "7 days"), ("since", "-1h"), ("since", "1.5h"),
    ("until", "1y"), ("until", "soon"), ("since", "9999999w")])
def test_a_time_that_is_neither_form_is_refused_naming_the_parameter(
        served: str, name: str, value: str) -> None:
    found = listed(served, **{name: value})
    assert found.status_code == 400, found.text
    error = found.json()["error"]
    assert error.startswith(f"{name}: ")
    if value != "9999999w":
        assert "ISO 8601" in error
        assert "15m, 1h, 24h or 7d" in error


# -- migrations and plans --------------------------------------------------------------------
def test_a_database_at_revision_0002_with_spans_finds_them_after_upgrading(
        db_url: str) -> None:  # noqa: F811
    made = engine(database(db_url))
    try:
        with made.begin() as connection:
            config = Config()
            config.set_main_option("script_location", os.path.dirname(migrations.__file__))
            config.attributes["connection"] = connection
            command.upgrade(config, "0002")
            for record in RECORDS:
                row, _ = prepare(record)
                assert row is not None
                connection.execute(text(
                    "INSERT INTO spans (span_id, trace_id, name, start_time, model, record) "
                    "VALUES (:s, :t, :n, :start, :model, :record)"),
                    {"s": row[0], "t": row[1], "n": row[3], "start": row[8], "model": row[12],
                     "record": row[11]})
            summarise_all(connection)  # as revision 0002 leaves them
    finally:
        made.dispose()
    store = Store(db_url)
    try:
        assert ids(store.traces(search="refund pol")) == [1]
        assert ids(store.traces(search="zurich")) == [2]
        assert ids(store.traces(search="escalated")) == [3]
    finally:
        store.close()


def _plan(store: Store, query: str) -> str:
    statement = str(store.listing(search=query).compile(
        store.engine, compile_kwargs={"literal_binds": True}))
    with store.engine.connect() as connection:
        if store.db.kind == "sqlite":
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}").all()
            return "\n".join(str(row[-1]) for row in rows)
        connection.exec_driver_sql("SET enable_seqscan = off")  # as on a big table
        return "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}"))


def test_the_search_reads_the_text_index_for_rare_and_for_common_words(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    rare = _plan(store, "refund pol")  # few matches: from the text index to the traces
    if store.db.kind == "sqlite":
        assert "SCAN span_fts VIRTUAL TABLE INDEX" in rare, rare
    else:  # the matching traces read first by the GIN index, then fetched by id
        assert "traces_pkey" in rare, rare
        ids = str(matched_ids(["refund", "pol"]).compile(
            store.engine, compile_kwargs={"literal_binds": True}))
        with store.engine.connect() as connection:
            connection.exec_driver_sql("SET enable_seqscan = off")
            connection.exec_driver_sql("SET enable_indexscan = off")
            first = "\n".join(r[0] for r in connection.exec_driver_sql(f"EXPLAIN {ids}"))
        assert "Bitmap Index Scan on span_search_body" in first, first
    assert "Seq Scan on span_search" not in rare, rare
    monkeypatch.setattr(_store, "COMMON", 0)  # a common word: traces in order, each checked
    common = _plan(store, "refund")
    assert "traces_start" in common, common
    assert "span_search_trace" in common, common
    for scan in ("Seq Scan on span_search", "SCAN span_search", "TEMP B-TREE", "Sort"):
        assert scan not in common, common
