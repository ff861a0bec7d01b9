"""Schema migrations: files of every earlier release upgrade in place, a database newer
than the code is refused in words, and servers starting together on one new database
all start while exactly one of them migrates it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

from fallom.server import _views, migrations
from fallom.server._db import SchemaTooNewError, database, engine
from fallom.server._store import Store, migrate

from ._databases import db_url  # noqa: F401  (a fixture)

# The schema fallom 0.1.0's `fallom serve` made (fallom/server/_store.py at 684209d): the
# first spans table, the columns its _create added after it, and no version table.
SCHEMA_0_1_0 = [
    "CREATE TABLE spans (span_id TEXT PRIMARY KEY, trace_id TEXT NOT NULL, parent_span_id TEXT, "
    "name TEXT NOT NULL, session_id TEXT, customer_id TEXT, config_key TEXT, status TEXT, "
    "start_time TEXT, duration_ms REAL, total_tokens INTEGER, record TEXT NOT NULL)",
    "CREATE INDEX spans_trace ON spans (trace_id)",
    "CREATE INDEX spans_customer ON spans (customer_id)",
    "CREATE INDEX spans_session ON spans (session_id)",
    "CREATE INDEX spans_start ON spans (start_time)",
    "CREATE TABLE assignments (config_key TEXT, config_version TEXT, session_id TEXT, "
    "assigned_model TEXT, PRIMARY KEY (config_key, config_version, session_id))",
    "CREATE TABLE versions (kind TEXT, key TEXT, version INTEGER, body TEXT, "
    "PRIMARY KEY (kind, key, version))",
    *(f"ALTER TABLE spans ADD COLUMN {column}" for column in (
        "model TEXT", "error_message TEXT", "kind TEXT", "ttft_ms REAL", "prompt_key TEXT",
        "prompt_version INTEGER", "prompt_ab_test_key TEXT", "prompt_variant_index INTEGER")),
]


def record(i: int, trace: int, **extra: Any) -> Dict[str, Any]:
    return {"trace_id": f"{trace:032x}", "span_id": f"{trace:08x}{i + 1:08x}",
            "name": f"span-{i}", "start_time": f"2026-01-01T00:00:{i:02d}.000000Z",
            "status": "OK", "duration_ms": 2.0, **extra}


def _spans_row(r: Dict[str, Any]) -> List[Any]:
    return [r["span_id"], r["trace_id"], r.get("parent_span_id"), r["name"], r.get("session_id"),
            r.get("customer_id"), r.get("config_key"), r.get("status"), r.get("start_time"),
            r.get("duration_ms"), r.get("total_tokens"), json.dumps(r), r.get("model"),
            r.get("error_message"), r.get("kind"), None, None, None, None, None]


def _old_records() -> List[Dict[str, Any]]:
    root = f"{1:08x}{1:08x}"
    return [record(0, 1, session_id="s-1", customer_id="u-1", name="agent"),
            record(1, 1, parent_span_id=root, session_id="s-1", customer_id="u-1",
                   model="gpt-4o", total_tokens=9, status="ERROR", error_message="boom"),
            record(0, 2, session_id="s-2", model="claude", total_tokens=1)]


def test_a_0_1_0_file_upgrades_in_place_and_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        for statement in SCHEMA_0_1_0:
            db.execute(statement)
        db.executemany(f"INSERT INTO spans VALUES ({', '.join('?' * 20)})",
                       [_spans_row(r) for r in _old_records()])
        db.execute("INSERT INTO assignments VALUES ('agent', '1', 's-1', 'gpt-4o')")
        db.execute("INSERT INTO versions VALUES ('config', 'agent', 1, ?)",
                   (json.dumps({"variants": [{"model": "gpt-4o", "weight": 100}]}),))
    store = Store(str(path))
    try:
        newest, oldest = store.traces()
        assert (oldest["trace_id"], oldest["spans"], oldest["status"], oldest["total_tokens"],
                oldest["root_name"], oldest["models"], oldest["error_message"]) == (
            f"{1:032x}", 2, "ERROR", 9, "agent", ["gpt-4o"], "boom")
        assert [t["trace_id"] for t in store.traces(model="claude")] == [newest["trace_id"]]
        assert [t["trace_id"] for t in store.traces(session_id="s-1")] == [oldest["trace_id"]]
        assert store.assignments() == [("agent", "1", "s-1", "gpt-4o")]
        assert [(s["session_id"], s["spans"], s["total_tokens"]) for s in _views.sessions(store)
                ] == [("s-1", 2, 9), ("s-2", 1, 1)]
        assert store.version_of("config", "agent", {"variants": [
            {"model": "gpt-4o", "weight": 100}]}) == 1  # the stored version, not a new one
        assert store.set_metrics("s-1", "agent", {"csat": "5"}) == 1  # tables 0.1.0 lacked
        assert store.add_run({"name": "r", "description": None, "judge_model": None,
                              "dataset_size": 0, "summary": {}}, [])["name"] == "r"
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (migrations.HEAD,)]
    assert migrate(str(path)).endswith(f"is at schema revision {migrations.HEAD}, nothing to do")


def test_a_database_at_each_earlier_revision_upgrades(db_url: str) -> None:  # noqa: F811
    found = database(db_url)
    made = engine(found)
    try:
        with made.begin() as connection:  # the schema of revision 0001, with spans in it
            config = Config()
            config.set_main_option("script_location", os.path.dirname(migrations.__file__))
            config.attributes["connection"] = connection
            command.upgrade(config, "0001")
            for r in _old_records():
                connection.execute(text(
                    "INSERT INTO spans (span_id, trace_id, parent_span_id, name, session_id, "
                    "customer_id, status, start_time, duration_ms, total_tokens, model, "
                    "error_message, record) VALUES (:s, :t, :p, :n, :session, :customer, "
                    ":status, :start, :duration, :tokens, :model, :error, :record)"),
                    {"s": r["span_id"], "t": r["trace_id"], "p": r.get("parent_span_id"),
                     "n": r["name"], "session": r.get("session_id"),
                     "customer": r.get("customer_id"), "status": r["status"],
                     "start": r["start_time"], "duration": r["duration_ms"],
                     "tokens": r.get("total_tokens"), "model": r.get("model"),
                     "error": r.get("error_message"), "record": json.dumps(r)})
    finally:
        made.dispose()
    said = migrate(db_url)
    assert said.endswith(f"migrated to schema revision {migrations.HEAD} (from 0001)")
    store = Store(db_url)
    try:
        assert [(t["spans"], t["status"]) for t in store.traces()] == [(1, "OK"), (2, "ERROR")]
        assert len(store.traces(customer_id="u-1")) == 1
    finally:
        store.close()


def test_a_database_newer_than_the_code_is_refused_in_words(db_url: str) -> None:  # noqa: F811
    Store(db_url).close()
    made = create_engine(database(db_url).url)
    with made.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    made.dispose()
    for attempt in (lambda: Store(db_url), lambda: migrate(db_url)):
        with pytest.raises(SchemaTooNewError) as refused:
            attempt()
        said = str(refused.value)
        assert "schema revision 0099, newer than this fallom serve knows" in said
        assert f"up to {migrations.HEAD}" in said
        assert "upgrade fallom" in said


# Each process waits for the word, then migrates (as `fallom serve migrate`, or a starting
# server, does) and prints what it did.
_STARTER = """
import sys
from fallom.server._store import migrate
print("ready", flush=True)
sys.stdin.readline()
print(migrate(sys.argv[1]), flush=True)
"""


def test_servers_starting_together_on_a_new_database_all_start_one_migrates(
        db_url: str) -> None:  # noqa: F811
    starters = [subprocess.Popen([sys.executable, "-c", _STARTER, db_url], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(6)]
    for proc in starters:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    for proc in starters:  # as nearly together as the machine allows
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    said = []
    for proc in starters:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        said.append(out.strip())
    migrated = [line for line in said if "migrated to schema revision" in line]
    assert len(migrated) == 1, said
    assert migrated[0].endswith(f"{migrations.HEAD} (from no revision)")
    assert sum(line.endswith("nothing to do") for line in said) == 5, said
