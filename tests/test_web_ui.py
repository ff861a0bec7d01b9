"""The web UI of ``fallom serve`` in a real headless Chromium, seeded by the real SDK.

Debian's ``chromium`` and ``chromium-driver`` are installed by ``.ci/run``; without
them (or without selenium) these tests skip and say so.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import requests

import fallom
from fallom.server._views import call_stats

from . import _serve_process as serve_process
from ._browser import MISSING, chromium

KEY = "ui-test-key"
CANARY = "<img src=x onerror=alert(1)>"

pytestmark = MISSING


def launch(tmp_path: Path, *args: str) -> Tuple[subprocess.Popen, str]:
    """``fallom serve`` with an A/B config and a prompt in its catalog."""
    config = tmp_path / "fallom.toml"
    config.write_text('[configs.agent]\nvariants = [{ model = "model-a", weight = 50 },'
                      ' { model = "model-b", weight = 50 }]\n'
                      '[prompts.greet]\nsystem = "You greet."\nuser = "Hello {{name}}"\n')
    return serve_process.launch("--db", str(tmp_path / "t.db"), "--config", str(config), *args)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()


def seed(url: str) -> Dict[str, Any]:
    """Traces made by the SDK: sessions on an A/B config, LLM calls, an error, the canary."""
    fallom.init(api_key=KEY, traces_url=url, configs_url=url, prompts_url=url)

    @fallom.trace_llm(name="ask")
    def ask(question: str, model: str) -> str:
        span = fallom.current_span()
        span.set_model(model)
        span.record_usage(prompt_tokens=10, completion_tokens=5)
        time.sleep(0.002 if model == "model-a" else 0.004)
        if question == "fail":
            raise RuntimeError("the model refused")
        return "an answer"

    roots: List[str] = []
    for i in range(12):
        session = f"session-{i}"
        model = fallom.models.get("agent", session, fallback="model-a")
        with fallom.session(config_key="agent", session_id=session, customer_id=f"c-{i % 3}"):
            with fallom.span("agent-run") as root:
                roots.append(root.trace_id)
                with fallom.span("retrieve", kind="retrieval"):
                    time.sleep(0.003)
                try:
                    ask("fail" if i == 5 else CANARY, model)
                except RuntimeError:
                    pass
    assert fallom.flush(10)
    fallom.shutdown(5)
    return {"roots": roots}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    tmp_path = tmp_path_factory.mktemp("ui")
    proc, url = launch(tmp_path, "--api-key", KEY)
    try:
        seeded = seed(url)
        deadline = time.monotonic() + 10  # assignment reports travel in the background
        while time.monotonic() < deadline:
            found = requests.get(f"{url}/api/experiments", timeout=5, headers={
                "Authorization": f"Bearer {KEY}"}).json()
            if sum(v["sessions"] for c in found["configs"] for v in c["variants"]) >= 12:
                break
            time.sleep(0.05)
        yield {"url": url, **seeded}
    finally:
        serve_process.stop(proc)


def open_page(browser: Any, url: str, route: str = "#/traces", key: str = KEY) -> None:
    browser.get(f"{url}/?load={uuid.uuid4().hex}{route}")  # a fresh page, not a hash change
    asked = "return !!document.getElementById('api-key')"
    wait(browser, f"{asked} || document.body.dataset.ready === {json.dumps(route)}")
    if browser.execute_script(asked):
        box = browser.find_element("id", "api-key")
        box.send_keys(key)
        box.submit()
    wait(browser, f"return document.body.dataset.ready === {json.dumps(route)}")


def wait(browser: Any, script: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = browser.execute_script(script)
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for: {script}")


def test_the_page_asks_for_the_key_once_and_keeps_it_out_of_urls(
        browser: Any, served: Dict[str, Any]) -> None:
    browser.get(f"{served['url']}/#/traces")
    browser.execute_script("sessionStorage.clear()")
    browser.get(f"{served['url']}/#/sessions")
    wait(browser, "return !!document.getElementById('api-key')")
    box = browser.find_element("id", "api-key")
    box.send_keys(KEY)
    box.submit()
    wait(browser, "return document.body.dataset.ready === '#/sessions'")
    assert browser.execute_script("return sessionStorage.getItem('fallom.apiKey')") == KEY
    assert KEY not in browser.current_url
    assert KEY not in browser.execute_script("return document.documentElement.outerHTML")
    html = requests.get(served["url"] + "/", timeout=5)
    assert "default-src 'self'" in html.headers["Content-Security-Policy"]


def test_the_list_shows_the_seeded_traces_and_filters_work(
        browser: Any, served: Dict[str, Any]) -> None:
    open_page(browser, served["url"])
    ids = browser.execute_script(
        "return [...document.querySelectorAll('#trace-rows tr')].map(r => r.dataset.traceId)")
    assert sorted(ids) == sorted(served["roots"])
    from selenium.webdriver.support.select import Select

    status = Select(browser.find_element("css selector", "select[name=status]"))
    status.select_by_value("ERROR")
    wait(browser, "return document.querySelectorAll('#trace-rows tr').length === 1")
    row = browser.find_element("css selector", "#trace-rows tr")
    assert "ERROR" in row.text
    status.select_by_value("")
    wait(browser, "return document.querySelectorAll('#trace-rows tr').length === 12")
    browser.find_element("css selector", "#more-filters summary").click()
    browser.find_element("css selector", "input[name=customer_id]").send_keys("c-1\t")
    wait(browser, "return document.querySelectorAll('#trace-rows tr').length === 4")
    assert {r.find_element("css selector", "td.col-customer").text for r in browser.find_elements(
        "css selector", "#trace-rows tr")} == {"c-1"}


def test_a_filter_the_server_refuses_says_why_and_can_be_fixed(
        browser: Any, served: Dict[str, Any]) -> None:
    from selenium.webdriver.support.select import Select

    open_page(browser, served["url"], "#/traces?since=last%20tuesday")  # a link, as shared
    message = wait(browser, "const e = document.getElementById('trace-error');"
                            "return e && !e.hidden && e.textContent")
    assert message.startswith("since: 'last tuesday' is not")
    Select(browser.find_element("css selector", "select[name=range]")).select_by_value("")
    wait(browser, "return document.getElementById('trace-error').hidden && "
                  "document.querySelectorAll('#trace-rows tr').length === 12")


def test_a_trace_opens_as_a_waterfall_with_proportional_bars(
        browser: Any, served: Dict[str, Any]) -> None:
    open_page(browser, served["url"])
    browser.find_element("css selector", f"tr[data-trace-id='{served['roots'][0]}']").click()
    wait(browser, "return document.body.dataset.ready.startsWith('#/trace/')")
    rows = browser.execute_script("""
        return [...document.querySelectorAll('#waterfall .row')].map(r => {
          const bar = r.querySelector('.bar');
          return [r.querySelector('.label').firstChild.textContent,
                  Number(bar.dataset.left), Number(bar.dataset.width),
                  bar.getBoundingClientRect().width, bar.className];
        })""")
    assert [r[0] for r in rows] == ["agent-run", "retrieve", "ask"]
    trace = requests.get(f"{served['url']}/api/traces/{served['roots'][0]}", timeout=5,
                         headers={"Authorization": f"Bearer {KEY}"}).json()
    by_name = {s["name"]: s for s in trace["spans"]}
    root_ms = by_name["agent-run"]["precise_duration_ms"]
    for name, _, width, pixels, _ in rows[1:]:
        assert width == pytest.approx(by_name[name]["precise_duration_ms"] / root_ms * 100,
                                      abs=0.5)
        assert pixels == pytest.approx(rows[0][3] * width / 100, abs=2)
    assert rows[0][2] == pytest.approx(100, abs=0.01)
    assert "llm" in rows[2][4]
    panel = browser.find_element("id", "span-panel").text
    assert "agent-run" in panel
    browser.find_element("tag name", "body").send_keys("\ue015\ue015")  # arrow down twice
    wait(browser, "return document.querySelector('.row.selected .label')"
                  ".firstChild.textContent === 'ask'")
    assert browser.find_element("id", "span-input").text == json.dumps(
        {"question": CANARY, "model": by_name["ask"]["model"]}, indent=2)
    assert browser.find_element("id", "span-output").text == "an answer"


def test_the_xss_canary_is_text_and_runs_nothing(browser: Any, served: Dict[str, Any]) -> None:
    open_page(browser, served["url"], f"#/trace/{served['roots'][0]}")
    browser.execute_script("window.__alerted = false; window.alert = () => { window.__alerted = true; };")
    browser.find_element("tag name", "body").send_keys("\ue015\ue015")
    wait(browser, "return !!document.getElementById('span-input')")
    assert CANARY in browser.find_element("id", "span-input").text
    assert browser.execute_script("return document.querySelectorAll('#span-panel img').length") == 0
    assert browser.execute_script("return window.__alerted") is False


def test_sessions_and_prompts_pages(browser: Any, served: Dict[str, Any]) -> None:
    open_page(browser, served["url"], "#/sessions")
    rows = browser.find_elements("css selector", "#sessions tbody tr")
    assert len(rows) == 12
    assert "c-" in rows[0].text
    rows[0].click()
    wait(browser, "return document.body.dataset.ready.startsWith('#/session/')")
    assert len(browser.find_elements("css selector", "#conversation li.turn")) == 1
    open_page(browser, served["url"], "#/prompts")
    assert "Hello {{name}}" in browser.find_element("tag name", "main").text


def test_experiment_numbers_equal_those_computed_from_the_api(
        browser: Any, served: Dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    open_page(browser, served["url"], "#/experiments")
    shown = browser.execute_script("""
        return [...document.querySelectorAll('table[data-config=agent] tbody tr')].map(r =>
          [r.dataset.variant, [...r.querySelectorAll('td')].map(c => c.textContent)])""")
    assert {variant for variant, _ in shown} <= {"model-a", "model-b"}
    assert "version 1: model-a 50% · model-b 50%" in browser.find_element("tag name", "main").text
    listing = requests.get(f"{served['url']}/api/traces?limit=100", timeout=5,
                           headers=headers).json()["traces"]
    by_variant: Dict[str, List[Tuple[Any, Any, Any, str]]] = {}
    sessions: Dict[str, int] = {}
    for summary in listing:
        spans = requests.get(f"{served['url']}/api/traces/{summary['trace_id']}", timeout=5,
                             headers=headers).json()["spans"]
        for span in spans:
            if span["kind"] == "llm":
                by_variant.setdefault(span["model"], []).append(
                    (span["duration_ms"], span.get("time_to_first_token_ms"),
                     span["total_tokens"], span["status"]))
                sessions[span["model"]] = sessions.get(span["model"], 0) + 1
    for variant, cells in shown:
        expected = call_stats(by_variant[variant])
        assert cells[2] == str(sessions[variant])  # one session, one call each
        assert cells[3] == str(expected["llm_calls"])
        assert cells[4] == f"{expected['p50_ms']:.1f} ms"
        assert cells[5] == f"{expected['p95_ms']:.1f} ms"
        assert cells[7] == f"{expected['tokens_per_call']:.1f}"
        assert cells[8] == f"{expected['error_rate'] * 100:.1f} %"


def test_no_request_leaves_the_origin(browser: Any, served: Dict[str, Any]) -> None:
    for route in ("#/traces", f"#/trace/{served['roots'][1]}", "#/sessions", "#/experiments",
                  "#/prompts"):
        open_page(browser, served["url"], route)
    entries = browser.execute_script(
        "return performance.getEntries().map(e => e.name).filter(n => n.includes('://'))")
    assert entries
    assert all(name.startswith(served["url"]) for name in entries), entries


def test_new_traces_arrive_while_the_page_is_open(browser: Any, served: Dict[str, Any],
                                                  tmp_path: Path) -> None:
    open_page(browser, served["url"])
    before = browser.execute_script("return document.querySelectorAll('#trace-rows tr').length")
    trace_id = uuid.uuid4().hex
    record = {"trace_id": trace_id, "span_id": "00000000000000aa", "name": "late-arrival",
              "start_time": "2099-01-01T00:00:00.000000Z", "duration_ms": 3, "status": "OK"}
    requests.post(f"{served['url']}/v1/traces", json=record, timeout=5,
                  headers={"Authorization": f"Bearer {KEY}"}).raise_for_status()
    wait(browser, f"return !!document.querySelector(\"tr[data-trace-id='{trace_id}']\")",
         timeout=10)
    assert browser.execute_script(
        "return document.querySelectorAll('#trace-rows tr').length") == before + 1


def test_a_deep_chain_and_a_cycle_of_parents_are_drawn_whole(
        browser: Any, served: Dict[str, Any]) -> None:
    trace_id = uuid.uuid4().hex

    def span(name: str, number: int, parent: Any) -> Dict[str, Any]:
        linked = {} if parent is None else {"parent_span_id": f"{0xd00d0000 + parent:016x}"}
        return {"trace_id": trace_id, "span_id": f"{0xd00d0000 + number:016x}", "name": name,
                **linked,
                "start_time": f"1999-01-01T00:00:00.{number:06d}Z", "duration_ms": 1,
                "status": "OK"}

    chain = [span(f"level-{i}", i, i - 1 if i > 1 else None) for i in range(1, 1201)]
    cycle = [span("loop-a", 5001, 5003), span("loop-b", 5002, 5001), span("loop-c", 5003, 5002)]
    requests.post(f"{served['url']}/v1/traces", json={"traces": chain + cycle}, timeout=10,
                  headers={"Authorization": f"Bearer {KEY}"}).raise_for_status()
    open_page(browser, served["url"], f"#/trace/{trace_id}")
    rows = browser.execute_script("""
        return [...document.querySelectorAll('#waterfall .row')].map(r =>
          [r.querySelector('.label').firstChild.textContent, r.classList.contains('again')])""")
    assert [name for name, again in rows if not again] == [
        *(f"level-{i}" for i in range(1, 1201)), "loop-a", "loop-b", "loop-c"]
    assert [name for name, again in rows if again] == ["↻ loop-a"]  # cut at the repeat
