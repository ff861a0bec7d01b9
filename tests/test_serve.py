"""``fallom serve`` as a real subprocess, and ``fallom traces`` on top of it."""

from __future__ import annotations

import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests

import fallom

from ._records import run_in_threads
from ._serve_process import launch, stop

KEY = "serve-test-key"


class Served:
    def __init__(self, proc: subprocess.Popen, url: str) -> None:
        self.proc, self.url = proc, url

    def post(self, body: Any, key: str = KEY, gzipped: bool = False,
             raw: Optional[bytes] = None) -> requests.Response:
        data = raw if raw is not None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        if gzipped:
            data, headers["Content-Encoding"] = gzip.compress(data), "gzip"
        return requests.post(f"{self.url}/v1/traces", data=data, headers=headers, timeout=10)

    def get(self, path: str, key: str = KEY) -> requests.Response:
        return requests.get(f"{self.url}{path}", headers={"Authorization": f"Bearer {key}"},
                            timeout=10)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "fallom.toml"
    path.write_text('''
[configs.agent]
variants = [{ model = "gpt-4o", weight = 50 }, { model = "claude", weight = 50 }]

[prompts.support]
system = """You help {{company}}.
Be brief."""
user = "{{question}}"

[prompt_ab_tests.tone]
variants = [{ prompt_key = "support", weight = 100 }]
''')
    return path


@pytest.fixture
def served(tmp_path: Path, config_file: Path) -> Iterator[Served]:
    proc, url = launch("--db", str(tmp_path / "t.db"), "--config", str(config_file),
                       "--api-key", KEY, "--api-key", "second-key")
    yield Served(proc, url)
    stop(proc)


def record(i: int, trace: int = 1, **extra: Any) -> Dict[str, Any]:
    return {"trace_id": f"{trace:032x}", "span_id": f"{i + 1:016x}", "name": f"span-{i}",
            "kind": "span", "start_time": f"2026-01-01T00:00:{i % 60:02d}.000000Z",
            "status": "OK", "duration_ms": 1.5, **extra}


def test_the_sdk_exporter_delivers_and_the_read_api_shows_it(served: Served) -> None:
    fallom.init(api_key=KEY, traces_url=served.url)
    with fallom.session(config_key="agent", session_id="s-9", customer_id="u-1"):
        with fallom.span("root") as root:
            with fallom.span("child"):
                pass
    assert fallom.flush(5.0)
    listing = served.get("/api/traces?session_id=s-9").json()["traces"]
    assert len(listing) == 1
    assert (listing[0]["root_name"], listing[0]["status"], listing[0]["spans"]) == (
        "root", "OK", 2)
    trace = served.get(f"/api/traces/{root.trace_id}").json()
    assert [s["name"] for s in trace["spans"]] == ["root", "child"]
    assert served.get("/api/traces?customer_id=nobody").json()["traces"] == []


def test_ingest_forms_and_failures(served: Served) -> None:
    assert served.post(record(0)).json()["accepted"] == 1  # one bare record
    assert served.post({"traces": [record(1), record(2)]}).json()["stored"] == 2
    assert served.post({"traces": [record(3)]}, gzipped=True).json()["stored"] == 1
    assert served.post({"traces": [record(1), record(2)]}).json()["stored"] == 0  # duplicates
    assert served.post({"traces": [record(4)]}, key="wrong").status_code == 401
    assert served.post({"traces": [record(4)]}, key="second-key").status_code == 200
    malformed = served.post(None, raw=b"{nope")
    assert malformed.status_code == 400
    assert "malformed" in malformed.json()["error"]
    partial = served.post({"traces": [record(5), {"span_id": "x"}, record(6, name="")]})
    assert partial.status_code == 200
    assert partial.json()["accepted"] == 1
    assert [e["index"] for e in partial.json()["errors"]] == [1, 2]
    none_valid = served.post({"traces": [{"name": "no ids"}]})
    assert none_valid.status_code == 400
    assert "trace_id" in none_valid.json()["errors"][0]["reason"]
    too_big = served.post(None, raw=b"x" * (17 * 1024 * 1024))
    assert too_big.status_code == 413
    spans = served.get(f"/api/traces/{1:032x}").json()["spans"]
    assert sorted(s["name"] for s in spans) == [f"span-{i}" for i in (0, 1, 2, 3, 4, 5)]


def test_configs_and_prompts_follow_the_file(served: Served, config_file: Path) -> None:
    configs = served.get("/configs").json()["configs"]
    assert [(c["key"], c["version"]) for c in configs] == [("agent", 1)]
    fallom.init(api_key=KEY, traces_url=served.url, configs_url=served.url,
                prompts_url=served.url, cache_ttl=0.2)
    assert fallom.models.get("agent", "s-1") in ("gpt-4o", "claude")
    prompt = fallom.prompts.get("support", variables={"company": "Acme", "question": "Hi?"})
    assert (prompt.system, prompt.user, prompt.version) == ("You help Acme.\nBe brief.", "Hi?", 1)
    assert fallom.prompts.get_ab("tone", "s-1").key == "support"

    text = config_file.read_text().replace('weight = 50 }, { model = "claude", weight = 50',
                                           'weight = 0 }, { model = "claude", weight = 100')
    time.sleep(0.01)  # make sure the file's mtime moves on coarse filesystems
    config_file.write_text(text)
    os.utime(config_file, (time.time() + 5, time.time() + 5))
    assert served.get("/configs").json()["configs"][0]["version"] == 2
    assert served.get("/configs/agent/version/1").json()["variants"][0]["weight"] == 50
    assert served.get("/configs/agent/version/3").status_code == 404
    assert served.get("/prompts/support/version/1").json()["system_prompt"].startswith("You help")
    deadline = time.monotonic() + 5
    while fallom.models.get("agent", "s-1") != "claude" and time.monotonic() < deadline:
        threading.Event().wait(0.05)
    assert fallom.models.get("agent", "s-1") == "claude"
    assert fallom.flush(2)


def test_a_broken_edit_keeps_the_previous_version(served: Served, config_file: Path) -> None:
    config_file.write_text('[configs.agent]\nvariants = [{ model = "x", weight = "lots" }]\n')
    os.utime(config_file, (time.time() + 5, time.time() + 5))
    configs = served.get("/configs").json()["configs"]
    assert configs[0]["version"] == 1


def test_assignments_are_stored(served: Served) -> None:
    body = {"config_key": "agent", "config_version": 1, "session_id": "s", "assigned_model": "m"}
    response = requests.post(f"{served.url}/sessions", json=body,
                             headers={"Authorization": f"Bearer {KEY}"}, timeout=5)
    assert response.status_code == 200


def test_bad_config_file_fails_at_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[configs.agent]\nvariants = []\n')
    result = subprocess.run([sys.executable, "-m", "fallom", "serve", "--port", "0", "--db",
                             str(tmp_path / "x.db"), "--config", str(bad)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert str(bad) in result.stderr
    assert "configs.agent" in result.stderr
    assert "no variants" in result.stderr


def test_no_key_means_loopback_only(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "fallom", "serve", "--host", "0.0.0.0",
                             "--port", "0", "--db", str(tmp_path / "x.db")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "without --api-key" in result.stderr


def test_no_key_configured_accepts_any_key_and_prints_one(tmp_path: Path) -> None:
    proc, url = launch(env={"FALLOM_DATA_DIR": str(tmp_path / "data")})
    try:
        served = Served(proc, url)
        assert served.post(record(0), key="anything").status_code == 200
        assert served.post(record(1), key="").status_code == 401
        assert (tmp_path / "data" / "traces.db").exists()
    finally:
        assert stop(proc) == 0
    assert proc.stderr is not None
    assert "stopped" in proc.stderr.read()


def traces_cli(served: Served, *args: str, env: Optional[Dict[str, str]] = None,
               check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fallom", "traces", *args], env={
        **os.environ, "FALLOM_TRACES_URL": served.url, "FALLOM_API_KEY": KEY, **(env or {})},
        capture_output=True, text=True, timeout=30, check=check)


def test_fallom_traces_lists_and_shows(served: Served) -> None:
    served.post({"traces": [record(0, trace=7, session_id="s-cli", total_tokens=12,
                                   model="gpt-4o"),
                            record(1, trace=7, parent_span_id=f"{1:016x}")]})
    header, row = traces_cli(served).stdout.splitlines()[:2]
    assert header.split() == ["TRACE", "START", "NAME", "MODEL", "DURATION", "TOKENS",
                              "SESSION", "STATUS"]
    assert row.split() == [f"{7:032x}", "2026-01-01T00:00:00.000", "span-0", "gpt-4o", "1.5ms",
                           "12", "s-cli", "OK"]
    shown = traces_cli(served, "show", f"{7:032x}").stdout
    assert shown.splitlines()[0].startswith("span-0 (span) 1.5 ms OK")
    assert shown.splitlines()[1].endswith("span-1 (span) 1.5 ms OK")
    as_json = traces_cli(served, "--json", "--session", "s-cli").stdout
    assert json.loads(as_json)["traces"][0]["total_tokens"] == 12
    served.post({"traces": [record(5, trace=8, session_id="a&b c")]})
    odd = traces_cli(served, "--json", "--session", "a&b c").stdout
    assert [t["trace_id"] for t in json.loads(odd)["traces"]] == [f"{8:032x}"]
    refused = traces_cli(served, "--api-key", "nope", check=False)
    assert refused.returncode != 0
    assert "refused" in refused.stderr
    served.post({"traces": [record(6, trace=9, name="t\x1b]0;owned\x07x", model="m\r")]})
    table = traces_cli(served, "--model", "m\r").stdout  # stored text cannot drive a terminal
    assert "t\\x1b]0;owned\\x07x" in table
    assert "m\\x0d" in table
    assert not any(c in table for c in "\x1b\x07\r")


def test_fallom_traces_filters_pages_and_prints_whole_values(served: Served) -> None:
    long_name = "a-root-span-name-" + "x" * 120
    question = "What is the capital of France? " * 20
    served.post({"traces": [
        record(0, trace=1, name=long_name, customer_id="c-1", config_key="agent",
               model="gpt-4o", start_time="2026-03-01T00:00:00.000000Z"),
        record(1, trace=2, status="ERROR", error_message="RateLimitError: slow down",
               model="claude", start_time="2026-03-02T00:00:00.000000Z",
               attributes={"fallom.raw.request": json.dumps({"input": question})}),
        record(2, trace=3, start_time="2026-01-01T00:00:00.000000Z")]})

    def ids(*args: str) -> List[str]:
        return [t["trace_id"][-1] for t in json.loads(traces_cli(served, "--json", *args).stdout)[
            "traces"]]

    assert ids() == ["2", "1", "3"]
    assert ids("--status", "error") == ["2"]
    assert ids("--customer", "c-1") == ids("--config", "agent") == ["1"]
    assert ids("--model", "claude") == ["2"]
    assert ids("--since", "2026-02-01") == ["2", "1"]
    assert ids("--since", "2026-03-01T12:00") == ["2"]  # UTC without an offset
    assert ids("--since", "2026-03-01T01:00:00+02:00") == ["2", "1"]  # 2026-02-28T23:00Z
    assert ids("--since", "2026-03-02T00:00:00Z") == ["2"]  # equal counts
    garbage = traces_cli(served, "--since", "last tuesday", check=False)
    assert garbage.returncode == 2
    assert "--since: 'last tuesday' is not an ISO 8601 date or time" in garbage.stderr
    refused = served.get("/api/traces?since=last%20tuesday")  # the web UI's filter box
    assert refused.status_code == 400
    assert refused.json()["error"].startswith(
        "since: 'last tuesday' is not an ISO 8601 date or time")
    assert ids("--name", "root-span") == ["1"]
    assert ids("--limit", "2", "--page", "2") == ["3"]
    table = traces_cli(served).stdout
    assert long_name in table  # no 80-column cut when stdout is not a terminal
    assert "ERROR RateLimitError: slow down" in table
    assert "\x1b[" not in table  # no colour into a pipe
    full = traces_cli(served, "show", f"{2:032x}", "--full").stdout
    assert question.strip() in " ".join(full.split())
    preview = traces_cli(served, "show", f"{2:032x}").stdout
    assert question.strip() not in " ".join(preview.split())
    ascii_only = traces_cli(served, "--status", "ERROR", env={"PYTHONIOENCODING": "ascii"}).stdout
    ascii_only.encode("ascii")
    help_text = traces_cli(served, "--help").stdout + subprocess.run(
        [sys.executable, "-m", "fallom", "--help"], capture_output=True, text=True,
        timeout=30).stdout
    assert "``" not in help_text


def test_fallom_traces_into_head_ends_quietly(served: Served) -> None:
    # more than a pipe's buffer holds, so the writer really meets a closed pipe
    served.post({"traces": [record(i, trace=100 + i, name="n" * 100) for i in range(1000)]})
    env = {**os.environ, "FALLOM_TRACES_URL": served.url, "FALLOM_API_KEY": KEY}
    for extra, first in (("", "TRACE"), ("--json", "{")):
        piped = subprocess.run(f"{sys.executable} -m fallom traces --limit 1000 {extra} | head -1",
                               shell=True, env=env, capture_output=True, text=True, timeout=30)
        assert piped.stdout.startswith(first)
        assert piped.stderr == ""


def test_a_database_of_the_first_schema_is_upgraded_in_place(tmp_path: Path) -> None:
    from fallom.server._store import Store

    path = tmp_path / "old.db"
    old = record(0, model="gpt-4o", status="ERROR", error_message="boom", kind="llm",
                 time_to_first_token_ms=12.5, prompt_key="plan", prompt_version=3)
    with sqlite3.connect(path) as db:  # the spans table as the first fallom serve made it
        db.execute("CREATE TABLE spans (span_id TEXT PRIMARY KEY, trace_id TEXT NOT NULL, "
                   "parent_span_id TEXT, name TEXT NOT NULL, session_id TEXT, customer_id TEXT, "
                   "config_key TEXT, status TEXT, start_time TEXT, duration_ms REAL, "
                   "total_tokens INTEGER, record TEXT NOT NULL)")
        db.execute("INSERT INTO spans VALUES (?, ?, NULL, ?, NULL, NULL, NULL, 'ERROR', ?, 1.5, "
                   "NULL, ?)", (old["span_id"], old["trace_id"], old["name"], old["start_time"],
                                json.dumps(old)))
    store = Store(str(path))
    (listed,) = store.traces(model="gpt-4o")  # a filter on a column added since
    assert (listed["trace_id"], listed["error_message"]) == (old["trace_id"], "boom")
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT kind, ttft_ms, prompt_key, prompt_version FROM spans"
                          ).fetchone() == ("llm", 12.5, "plan", 3)
    Store(str(path))  # opening it again changes nothing


def test_servers_starting_together_on_one_new_database_all_start(tmp_path: Path) -> None:
    from fallom.server._store import Store

    # the race that made the second of two `fallom serve` fail with "duplicate column name"
    # (both adding the later columns) or "database is locked" (both switching to WAL)
    for trial in range(10):
        path = str(tmp_path / f"t{trial}.db")
        barrier, errors = threading.Barrier(6), []

        def start(_: int, path: str = path, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                Store(path)
            except Exception as exc:  # the test reports any of them
                errors.append(exc)

        run_in_threads(start, 6)
        assert errors == []
    db = tmp_path / "shared.db"
    procs = [launch("--db", str(db), "--api-key", KEY) for _ in range(2)]
    try:
        for index, (proc, url) in enumerate(procs):
            assert Served(proc, url).post(record(index)).status_code == 200
    finally:
        for proc, _ in procs:
            assert stop(proc) == 0
    with sqlite3.connect(db) as check:
        assert check.execute("SELECT COUNT(*) FROM spans").fetchone() == (2,)


def test_16_clients_200_batches_of_50_all_stored_once(served: Served, tmp_path: Path) -> None:
    def client(c: int, errors: List[str]) -> None:
        session = requests.Session()
        for b in range(200):
            batch = [record(c * 10_000 + b * 50 + i, trace=c * 1000 + b + 1) for i in range(50)]
            data = gzip.compress(json.dumps({"traces": batch}).encode())
            response = session.post(f"{served.url}/v1/traces", data=data, timeout=30, headers={
                "Authorization": f"Bearer {KEY}", "Content-Encoding": "gzip"})
            if response.status_code != 200 or response.json()["stored"] != 50:
                errors.append(response.text)

    errors: List[str] = []
    threads = [threading.Thread(target=client, args=(c, errors)) for c in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    listing = served.get("/api/traces?limit=1000").json()["traces"]
    assert len(listing) == 1000
    assert all(t["spans"] == 50 for t in listing)
    with sqlite3.connect(tmp_path / "t.db") as db:
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT span_id) FROM spans").fetchone() == (
            160_000, 160_000)


def test_a_json_catalog_is_accepted(tmp_path: Path) -> None:
    catalog = tmp_path / "fallom.json"
    catalog.write_text(json.dumps({"configs": {"agent": {"variants": [
        {"model": "only", "weight": 100}]}}, "prompts": {"p": {"system": "S", "user": "U"}}}))
    proc, url = launch("--db", str(tmp_path / "j.db"), "--config", str(catalog),
                       "--api-key", KEY)
    try:
        served = Served(proc, url)
        assert served.get("/configs").json()["configs"][0]["variants"][0]["model"] == "only"
        assert served.get("/prompts").json()["prompts"][0]["system_prompt"] == "S"
    finally:
        stop(proc)


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="POSIX signals")
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_serve_stops_on_a_signal_even_when_sigint_came_in_ignored(tmp_path: Path,
                                                                   sig: str) -> None:
    command = [sys.executable, "-m", "fallom", "serve", "--port", "0", "--db",
               str(tmp_path / "s.db")]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # it is up
        proc.send_signal(getattr(signal, sig))
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
