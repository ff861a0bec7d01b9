"""``fallom serve`` stores the custom metrics ``fallom`` 0.2.7's ``trace.span`` sends
(``POST /spans``, latest value per field wins) and shows them with the session (issue #26)."""

from __future__ import annotations

import gzip
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import requests

import fallom.server
from fallom.server import FallomServer
from fallom.server._app import ServeLimits, serve
from fallom.server._ingest import MAX_DEPTH, MAX_ID_CHARS
from fallom.server._store import Store

from . import _serve_process as serve_process
from . import test_web_ui as web_ui
from ._browser import MISSING
from ._records import run_in_threads
from .reference.make_fixtures import reference_python
from .test_serve_hostile import KEY, post, record

CANARY = web_ui.CANARY
UI_KEY = web_ui.KEY
browser = web_ui.browser  # the fixture: one headless Chromium for this module's page test

# Run by fallom 0.2.7: two trace.span calls, each waited for (0.2.7 posts from a thread).
DRIVE_027 = """
import sys, threading
import fallom
from fallom import trace

url, key = sys.argv[1], sys.argv[2]
fallom.init(api_key=key, traces_url=url, configs_url=url, prompts_url=url)

def sent(data, **session):
    before = set(threading.enumerate())
    trace.span(data, **session)
    for thread in set(threading.enumerate()) - before:
        thread.join(10)

sent({"outlier_score": 0.8, "engagement": 42},
     config_key="linkedin-agent", session_id="user123-convo456")
trace.set_session("linkedin-agent", "user123-convo456")
sent({"outlier_score": 0.95, "label": "converted"})
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FallomServer]:
    running = serve(port=0, db=str(tmp_path / "t.db"), api_keys=[KEY],
                    limits=ServeLimits(max_records=50))
    yield running
    running.close()


def send(server: FallomServer, body: Any, **headers: str) -> requests.Response:
    return post(server, json.dumps(body).encode(), headers, path="/spans")


def session_of(server: FallomServer, session_id: str) -> requests.Response:
    return requests.get(f"{server.url}/api/sessions/{requests.utils.quote(session_id, safe='')}",
                        headers={"Authorization": f"Bearer {KEY}"}, timeout=10)


def metrics_of(server: FallomServer, session_id: str) -> Dict[str, Any]:
    answer = session_of(server, session_id)
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["metrics"])


def metric(session_id: str, data: Any, config_key: str = "agent") -> Dict[str, Any]:
    return {"config_key": config_key, "session_id": session_id, "data": data}


@pytest.mark.timeout(900)  # the first run also makes the reference's virtual environment
def test_the_published_sdk_s_trace_span_reaches_a_real_fallom_serve(tmp_path: Path) -> None:
    try:
        python = reference_python()
    except RuntimeError as exc:  # no interpreter on this machine can run the reference
        pytest.skip(str(exc))
    proc, url = serve_process.launch("--db", str(tmp_path / "t.db"), "--api-key", KEY)
    try:
        script = tmp_path / "drive.py"
        script.write_text(DRIVE_027)
        subprocess.run([str(python), str(script), url, KEY], check=True, timeout=60,
                       capture_output=True, cwd=tmp_path)
        found = requests.get(f"{url}/api/sessions/user123-convo456", timeout=10,
                             headers={"Authorization": f"Bearer {KEY}"})
    finally:
        serve_process.stop(proc)
    assert found.status_code == 200, found.text  # it was a 404: no route POST /spans
    metrics = found.json()["metrics"]["linkedin-agent"]
    assert {field: m["value"] for field, m in metrics.items()} == {
        "outlier_score": 0.95, "engagement": 42, "label": "converted"}
    assert metrics["outlier_score"]["updated_at"] > metrics["engagement"]["updated_at"]


def test_latest_value_per_field_wins_and_a_repeat_changes_nothing(server: FallomServer) -> None:
    first = send(server, metric("s-1", {"score": 1, "label": "a", "tags": ["x", {"y": None}]}))
    assert (first.status_code, first.json()) == (200, {"accepted": 3, "stored": 3})
    assert send(server, metric("s-1", {"score": 2})).json() == {"accepted": 1, "stored": 1}
    send(server, metric("s-1", {"score": "other config"}, config_key="other"))
    shown = metrics_of(server, "s-1")
    assert {k: {f: m["value"] for f, m in v.items()} for k, v in shown.items()} == {
        "agent": {"score": 2, "label": "a", "tags": ["x", {"y": None}]},
        "other": {"score": "other config"}}
    assert shown["agent"]["score"]["updated_at"] > shown["agent"]["label"]["updated_at"]
    again = send(server, metric("s-1", {"score": 2, "label": "a"}))  # a retry, say
    assert (again.status_code, again.json()) == (200, {"accepted": 2, "stored": 0})
    assert metrics_of(server, "s-1") == shown


def test_threads_posting_at_once_lose_no_field_and_the_last_value_wins(
        server: FallomServer) -> None:
    replies: List[int] = []

    def client(n: int) -> None:
        for i in range(25):  # each thread's posts in order: its last one is its latest
            replies.append(send(server, metric("busy", {f"thread-{n}": i, "shared": f"{n}-{i}"}
                                               )).status_code)

    run_in_threads(client, 8)
    assert replies == [200] * 200
    shown = metrics_of(server, "busy")["agent"]
    assert {f: m["value"] for f, m in shown.items() if f != "shared"} == {
        f"thread-{n}": 24 for n in range(8)}
    assert shown["shared"]["value"] in {f"{n}-24" for n in range(8)}
    assert shown["shared"]["updated_at"] == max(m["updated_at"] for m in shown.values())


@pytest.mark.parametrize(("body", "reason"), [
    ([1], "expected {config_key, session_id, data}"),
    ({"session_id": "s", "data": {}}, "config_key must be a non-empty string"),
    (metric("", {}), "session_id must be a non-empty string"),
    ({"config_key": "agent", "session_id": 7, "data": {}}, "session_id must be a non-empty"),
    (metric("s" * (MAX_ID_CHARS + 1), {}), f"session_id must be at most {MAX_ID_CHARS}"),
    ({"config_key": "agent", "session_id": "s"}, "data must be an object"),
    (metric("s", [1, 2]), "data must be an object"),
    (metric("s", {"": 1}), "data: a metric name must be a non-empty string"),
    (metric("s", {"deep": json.loads("[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2))}),
     f"data.deep: nested more than {MAX_DEPTH} levels deep"),
])
def test_a_bad_body_is_a_400_naming_the_field_and_stores_nothing(
        server: FallomServer, body: Any, reason: str) -> None:
    answer = send(server, body)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(reason)
    assert requests.get(f"{server.url}/api/sessions", headers={"Authorization": f"Bearer {KEY}"},
                        timeout=10).json()["sessions"] == []


def test_what_json_cannot_carry_is_refused_by_name(server: FallomServer) -> None:
    nan = post(server, b'{"config_key": "a", "session_id": "s", "data": {"v": NaN}}',
               path="/spans")
    assert (nan.status_code, nan.json()["error"]) == (
        400, "data.v: a number is NaN or Infinity, which JSON cannot hold")
    lone = post(server, b'{"config_key": "a", "session_id": "\\ud800", "data": {}}',
                path="/spans")
    assert (lone.status_code, lone.json()["error"]) == (
        400, "session_id is not valid Unicode (a lone surrogate)")
    broken = post(server, b'{"config_key": ', path="/spans")
    assert broken.status_code == 400
    assert broken.json()["error"].startswith("malformed body")


def test_keys_and_limits_are_those_of_the_traces_route(server: FallomServer) -> None:
    body = json.dumps(metric("s", {"v": 1})).encode()
    assert post(server, body, {"Authorization": "Bearer wrong"}, path="/spans").status_code == 401
    assert post(server, body, {"Authorization": ""}, path="/spans").status_code == 401
    too_many = send(server, metric("s", {f"m{i}": i for i in range(51)}))  # max_records=50
    assert (too_many.status_code, too_many.json()["error"]) == (
        413, "over 50 metrics in one request; send fewer at a time")
    assert post(server, body, {"Content-Encoding": "br"}, path="/spans").status_code == 415
    zipped = post(server, gzip.compress(body), {"Content-Encoding": "gzip"}, path="/spans")
    assert zipped.json() == {"accepted": 1, "stored": 1}
    assert metrics_of(server, "s")["agent"]["v"]["value"] == 1


def test_a_session_with_only_metrics_is_listed_and_has_a_page(server: FallomServer) -> None:
    traced = record(0, session_id="traced", customer_id="c-1")
    assert post(server, json.dumps(traced).encode()).status_code == 200
    send(server, metric("traced", {"score": 3}))
    send(server, metric("metrics/only", {"score": 0.5}))
    headers = {"Authorization": f"Bearer {KEY}"}
    listed = requests.get(f"{server.url}/api/sessions", headers=headers, timeout=10).json()
    by_id = {s["session_id"]: s for s in listed["sessions"]}
    assert set(by_id) == {"traced", "metrics/only"}
    assert (by_id["metrics/only"]["traces"], by_id["metrics/only"]["total_tokens"]) == (0, None)
    assert by_id["traced"]["traces"] == 1
    assert by_id["traced"]["metrics"]["agent"]["score"]["value"] == 3
    of_customer = requests.get(f"{server.url}/api/sessions?customer_id=c-1", headers=headers,
                               timeout=10).json()["sessions"]
    assert [s["session_id"] for s in of_customer] == ["traced"]
    alone = session_of(server, "metrics/only").json()
    assert (alone["traces"], alone["metrics"]["agent"]["score"]["value"]) == (0, 0.5)
    assert session_of(server, "nobody").status_code == 404


def test_a_database_of_the_previous_schema_opens_and_takes_metrics(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    Store(path).close()
    with sqlite3.connect(path) as db:  # as the schema before metrics left it
        db.execute("DROP TABLE metrics")
    running = serve(port=0, db=path, api_keys=[KEY])
    try:
        assert send(running, metric("s-old", {"kept": True})).status_code == 200
        assert metrics_of(running, "s-old")["agent"]["kept"]["value"] is True
    finally:
        running.close()


def test_the_protobuf_hint_names_an_install_from_this_checkout(
        server: FallomServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # without the otel extra: PyPI's 'fallom[otel]' is 0.2.7, which has no such extra
    monkeypatch.setitem(sys.modules, "google.protobuf.json_format", None)
    answer = post(server, b"\x0a\x00", {"Content-Type": "application/x-protobuf"})
    assert answer.status_code == 415
    assert "pip install -e '.[otel]'" in answer.json()["error"]
    package = Path(fallom.server.__file__).parent.parent
    for source in [*(package / "server").rglob("*.py"), *(package / "cli").rglob("*.py")]:
        assert "'fallom[otel]'" not in source.read_text(), source


@MISSING
def test_the_session_page_shows_the_metrics_as_text(browser: Any, tmp_path: Path) -> None:
    proc, url = serve_process.launch("--db", str(tmp_path / "t.db"), "--api-key", UI_KEY)
    try:
        for data in ({"score": 0.5, CANARY: CANARY}, {"score": 0.75, "tags": ["a", "b"]}):
            requests.post(f"{url}/spans", json=metric("only-metrics", data), timeout=10,
                          headers={"Authorization": f"Bearer {UI_KEY}"}).raise_for_status()
        web_ui.open_page(browser, url, "#/sessions")
        assert browser.find_element("css selector", "#sessions tbody tr td").text == \
            "only-metrics"
        browser.execute_script("window.__alerted = false; "
                               "window.alert = () => { window.__alerted = true; };")
        browser.find_element("css selector", "#sessions tbody tr").click()
        web_ui.wait(browser, "return document.body.dataset.ready === '#/session/only-metrics'")
        rows = browser.execute_script("""
            return [...document.querySelectorAll('#session-metrics tbody tr')].map(r =>
              [...r.querySelectorAll('td')].slice(0, 3).map(c => c.textContent))""")
        assert sorted(rows) == sorted([[CANARY, CANARY, "agent"], ["score", "0.75", "agent"],
                                       ["tags", json.dumps(["a", "b"], indent=2), "agent"]])
        assert "No traces in this session." in browser.find_element("tag name", "main").text
        assert browser.execute_script("return document.querySelectorAll('main img').length") == 0
        assert browser.execute_script("return window.__alerted") is False
    finally:
        serve_process.stop(proc)
