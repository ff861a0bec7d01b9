"""The Overview, Sessions, Prompts and Experiments pages of ``fallom serve``'s web UI (#29)
in a real headless Chromium, at 1400x900 and 400x800, on records posted over HTTP.

Debian's ``chromium`` and ``chromium-driver`` are installed by ``.ci/run``; without
them (or without selenium) these tests skip and say so.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import requests

from . import _serve_process as serve_process
from . import test_web_ui as web_ui
from ._browser import MISSING, chromium
from .test_serve_evals import result_027, upload_027

KEY = "pages-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
SIZES = [(1400, 900), (400, 800)]
CANARY = web_ui.CANARY  # the stored string that must stay text

pytestmark = MISSING

CATALOG_V1 = """
[configs.agent]
variants = [{ model = "model-a", weight = 50 }, { model = "model-b", weight = 50 }]
[prompts.greet]
system = "You greet people.\\nBe brief."
user = "Hello {{name}}"
[prices."gpt-4o"]
input = 2.50
output = 10.00
"""
# Version 2 of both: a config with a new variant nobody was assigned yet, a prompt with
# its second line changed.
CATALOG_V2 = CATALOG_V1.replace('{ model = "model-b", weight = 50 }',
                                '{ model = "model-c", weight = 50 }').replace(
    "Be brief.", "Be warm and brief.")


def iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def llm_trace(trace_id: str, session: str, at: datetime, question: str, model: str,
              status: str = "OK") -> List[Dict[str, Any]]:
    """A root span and one chat call under it: 1,000 tokens in, 500 out."""
    root = {"trace_id": trace_id, "span_id": f"{trace_id[:15]}1", "name": "support-turn",
            "session_id": session, "config_key": "agent", "customer_id": "cust-1",
            "start_time": iso(at), "duration_ms": 900, "status": status}
    call = {"trace_id": trace_id, "span_id": f"{trace_id[:15]}2",
            "parent_span_id": root["span_id"], "name": "chat", "kind": "llm", "model": model,
            "session_id": session, "config_key": "agent", "customer_id": "cust-1",
            "start_time": iso(at + timedelta(milliseconds=10)), "duration_ms": 800,
            "status": status, "error_message": "rate limited" if status == "ERROR" else None,
            "prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500,
            "input": {"messages": [{"role": "user", "content": question}]},
            "output": {"role": "assistant", "content": f"answer to {question}"}}
    return [root, {k: v for k, v in call.items() if v is not None}]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    """A server with prices: session conv-1 of three priced calls, one unpriced error."""
    tmp = tmp_path_factory.mktemp("pages")
    catalog = tmp / "fallom.toml"
    catalog.write_text(CATALOG_V1)
    proc, url = serve_process.launch("--db", str(tmp / "p.db"), "--config", str(catalog),
                                     "--api-key", KEY)
    try:
        now = datetime.now(timezone.utc)
        turns = [uuid.uuid4().hex for _ in range(3)]
        records: List[Dict[str, Any]] = []
        for n, trace_id in enumerate(turns):  # posted newest first: the page must order them
            records = llm_trace(trace_id, "conv-1", now - timedelta(minutes=110 - 35 * n),
                                f"question {n + 1} {CANARY}", "gpt-4o-2024-08-06") + records
        failed = uuid.uuid4().hex
        records += llm_trace(failed, "conv-2", now - timedelta(hours=5), "why?",
                             "mystery-model", status="ERROR")
        post(url, "/v1/traces", {"traces": records})
        post(url, "/sessions", {"config_key": "agent", "config_version": 1,
                                "session_id": "conv-1", "assigned_model": "model-a"})
        get(url, "/api/prompts")  # version 1 stored, then the file changes to version 2
        catalog.write_text(CATALOG_V2)
        stat = catalog.stat()
        os.utime(catalog, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
        assert [v["version"] for v in get(url, "/api/prompts")["prompts"][0]["versions"]] == [1, 2]
        run = requests.post(f"{url}/api/sdk-evals", headers=AUTH, timeout=10, json=upload_027(
            "nightly", [result_027("2 + 2?", "4", accuracy=0.9)]))
        run.raise_for_status()
        yield {"url": url, "turns": turns, "failed": failed, "run": run.json()["run_id"]}
    finally:
        serve_process.stop(proc)


def post(url: str, path: str, body: Any) -> None:
    requests.post(url + path, json=body, headers=AUTH, timeout=10).raise_for_status()


def get(url: str, path: str) -> Any:
    reply = requests.get(url + path, headers=AUTH, timeout=10)
    reply.raise_for_status()
    return reply.json()


def wait(browser: Any, script: str, timeout: float = 10.0) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=0.02).until(
        lambda driver: driver.execute_script(script), f"timed out waiting for: {script}")


def open_page(browser: Any, url: str, route: str, size: Tuple[int, int]) -> None:
    """A fresh page at ``route`` in a window of ``size``, the key given when asked."""
    browser.set_window_size(*size)
    web_ui.open_page(browser, url, route, KEY)


def no_sideways_scroll(browser: Any) -> None:
    widths = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"


def texts(browser: Any, css: str) -> List[str]:
    return browser.execute_script(
        f"return [...document.querySelectorAll({json.dumps(css)})].map(e => e.textContent)")


@pytest.mark.parametrize("size", SIZES, ids=["1400", "400"])
def test_overview_draws_the_known_calls(browser: Any, served: Dict[str, Any],
                                        size: Tuple[int, int]) -> None:
    open_page(browser, served["url"], "#/overview?since=24h", size)
    api = get(served["url"], "/api/overview?since=24h")
    with_calls = [b for b in api["series"] if b["requests"]]
    assert len(with_calls) >= 2  # the calls lie 110, 75, 40 min and 5 h ago
    bars = browser.execute_script("""
        return [...document.querySelectorAll('#chart-requests .bucket')].map(g =>
          [g.dataset.start, g.querySelectorAll('rect').length, g.querySelector('title').textContent])""")
    assert [start for start, _, _ in bars] == [b["start"] for b in with_calls]
    assert sum(int(title.split("\n")[1].split(" ")[0]) for _, _, title in bars) == 4
    assert browser.execute_script(
        "return document.querySelectorAll('#chart-latency circle.layer-p95').length"
    ) == len(with_calls)
    assert browser.find_element("css selector", "#overview-requests .figure-value").text == "4"
    assert browser.find_element("css selector",
                                "#overview-error-rate .figure-value").text == "25.0 %"
    # three calls of gpt-4o-2024-08-06 at gpt-4o's price: 3 x (1000 x 2.50 + 500 x 10) / 1e6
    assert browser.find_element("css selector", "#overview-cost .figure-value").text == "$0.0225"
    rows = browser.execute_script("""
        return Object.fromEntries([...document.querySelectorAll('#by-model tbody tr')].map(r =>
          [r.dataset.key, [...r.querySelectorAll('td')].map(c => c.textContent)]))""")
    assert rows["gpt-4o-2024-08-06"][1:3] == ["3", "0.0 %"]
    assert rows["gpt-4o-2024-08-06"][-1] == "$0.0225"
    assert rows["mystery-model"][1:3] == ["1", "100.0 %"]
    assert rows["mystery-model"][-1] == "–"  # no price for it: no dollar figure
    assert browser.find_elements("id", "price-hint") == []
    assert "null" not in browser.find_element("tag name", "main").text
    assert browser.execute_script(
        "return document.querySelector('#chart-requests svg').getBoundingClientRect().right"
        " <= document.documentElement.clientWidth")
    no_sideways_scroll(browser)


@pytest.mark.parametrize("size", SIZES, ids=["1400", "400"])
def test_overview_range_and_a_model_row_open_what_they_say(
        browser: Any, served: Dict[str, Any], size: Tuple[int, int]) -> None:
    from selenium.webdriver.support.select import Select

    open_page(browser, served["url"], "#/overview?since=24h", size)
    Select(browser.find_element("id", "overview-range")).select_by_value("1h")
    wait(browser, "return document.body.dataset.ready === '#/overview?since=1h'")
    assert browser.find_element("css selector", "#overview-requests .figure-value").text == "1"
    browser.find_element("css selector", "#by-model tbody tr").click()
    wait(browser, "return location.hash.startsWith('#/traces?')")
    assert "model=gpt-4o-2024-08-06" in browser.execute_script("return location.hash")


@pytest.mark.parametrize("size", SIZES, ids=["1400", "400"])
def test_cost_is_a_dash_and_a_hint_without_prices(
        browser: Any, tmp_path: Path, size: Tuple[int, int]) -> None:
    proc, url = serve_process.launch("--db", str(tmp_path / "n.db"), "--api-key", KEY)
    try:
        post(url, "/v1/traces", {"traces": llm_trace(uuid.uuid4().hex, "s", datetime.now(
            timezone.utc) - timedelta(minutes=5), "hi", "gpt-4o")})
        open_page(browser, url, "#/overview", size)
        assert browser.find_element("css selector", "#overview-cost .figure-value").text == "–"
        assert '[prices."gpt-4o"]' in browser.find_element("id", "price-hint").text
        assert browser.find_elements("id", "chart-cost") == []
        assert "$" not in browser.find_element("id", "by-model").text
    finally:
        serve_process.stop(proc)


@pytest.mark.parametrize("size", SIZES, ids=["1400", "400"])
def test_an_empty_overview_shows_how_to_send_a_first_trace(
        browser: Any, tmp_path: Path, size: Tuple[int, int]) -> None:
    proc, url = serve_process.launch("--db", str(tmp_path / "e.db"), "--api-key", KEY)
    try:
        open_page(browser, url, "#/overview", size)
        assert "FALLOM_TRACES_URL" in browser.find_element("id", "empty-state").text
        assert browser.find_elements("css selector", "svg") == []
        no_sideways_scroll(browser)
    finally:
        serve_process.stop(proc)


@pytest.mark.parametrize("size", SIZES, ids=["1400", "400"])
def test_a_session_reads_as_its_conversation_with_totals(
        browser: Any, served: Dict[str, Any], size: Tuple[int, int]) -> None:
    open_page(browser, served["url"], "#/session/conv-1", size)
    order = browser.execute_script(
        "return [...document.querySelectorAll('#conversation li.turn')].map(t => t.dataset.traceId)")
    assert order == served["turns"]  # oldest first, as the user asked
    said = texts(browser, "#conversation .chat-msg")
    assert said == [text for n in (1, 2, 3) for text in (
        f"userquestion {n} {CANARY}", f"assistantanswer to question {n} {CANARY}")]
    links = browser.execute_script(
        "return [...document.querySelectorAll('#conversation .turn-link')].map(a => a.hash)")
    assert links == [f"#/trace/{t}" for t in served["turns"]]
    figures = dict(zip(texts(browser, "#session-totals .figure .muted"),
                       texts(browser, "#session-totals .figure-value")))
    assert figures["traces"] == "3"
    assert figures["tokens in"] == "3,000"
    assert figures["tokens out"] == "1,500"
    assert figures["cost"] == "$0.0225"
    assert figures["errors"] == "0"
    assert "null" not in browser.find_element("tag name", "main").text
    # the stored "<img ...>" is text on the page, never an element
    assert browser.execute_script("return document.querySelectorAll('main img').length") == 0
    no_sideways_scroll(browser)
    browser.find_element("css selector", "#conversation .turn-link").click()
    wait(browser, f"return document.body.dataset.ready === '#/trace/{served['turns'][0]}'")


@pytest.mark.parametrize("size", SIZES, ids=["1400", "400"])
def test_the_sessions_list_has_a_header_and_a_link_per_session(
        browser: Any, served: Dict[str, Any], size: Tuple[int, int]) -> None:
    open_page(browser, served["url"], "#/sessions", size)
    assert texts(browser, "#sessions thead th") == [
        "Session", "Customer", "Config", "Traces", "Tokens in", "Tokens out", "Cost", "Errors",
        "First", "Last"]
    rows = browser.execute_script("""
        return [...document.querySelectorAll('#sessions tbody tr')].map(r =>
          [r.dataset.href, [...r.querySelectorAll('td')].map(c => c.textContent)])""")
    by_id = {cells[0]: (href, cells) for href, cells in rows}
    assert set(by_id) == {"conv-1", "conv-2"}
    href, cells = by_id["conv-1"]
    assert href == "#/session/conv-1"
    assert cells[3:8] == ["3", "3,000", "1,500", "$0.0225", "0"]
    assert by_id["conv-2"][1][6] == "–"  # mystery-model has no price
    assert sum("conv-1" in cell for cell in cells) == 1
    no_sideways_scroll(browser)
    browser.find_element("tag name", "body").send_keys("j")
    wait(browser, "return document.activeElement.matches('#sessions tbody tr')")
    browser.switch_to.active_element.send_keys("\ue007")  # Enter
    wait(browser, "return document.body.dataset.ready.startsWith('#/session/')")


@pytest.mark.parametrize("size", SIZES, ids=["1400", "400"])
def test_two_prompt_versions_side_by_side_mark_the_changed_line(
        browser: Any, served: Dict[str, Any], size: Tuple[int, int]) -> None:
    open_page(browser, served["url"], "#/prompts", size)
    rows = browser.execute_script("""
        return [...document.querySelectorAll('.prompt-diff table[data-part=system] tbody tr')]
          .map(r => [r.dataset.op, ...[...r.querySelectorAll('td')].map(c => c.className + '|' + c.textContent)])""")
    assert rows == [["same", "diff-line |You greet people.", "diff-line |You greet people."],
                    ["change", "diff-line diff-del|Be brief.",
                     "diff-line diff-add|Be warm and brief."]]
    assert browser.execute_script(
        "return [...document.querySelectorAll('.prompt-diff table[data-part=user] tbody tr')]"
        ".map(r => r.dataset.op)") == ["same"]
    from selenium.webdriver.support.select import Select

    Select(browser.find_element("css selector", "select[data-side=old]")).select_by_value("2")
    wait(browser, "return !document.querySelector('.prompt-diff tr[data-op=change]')")
    no_sideways_scroll(browser)


@pytest.mark.parametrize("size", SIZES, ids=["1400", "400"])
def test_experiments_list_every_variant_and_each_version_once(
        browser: Any, served: Dict[str, Any], size: Tuple[int, int]) -> None:
    open_page(browser, served["url"], "#/experiments", size)
    text = browser.find_element("tag name", "main").text
    assert text.count("version 1:") == 1
    assert text.count("version 2:") == 1
    assert "version 2: model-a 50% · model-c 50%" in text
    rows = browser.execute_script("""
        return [...document.querySelectorAll('table[data-config=agent] tbody tr')].map(r =>
          [r.dataset.version, r.dataset.variant, r.querySelectorAll('td')[2].textContent])""")
    assert rows == [["1", "model-a", "1"], ["1", "model-b", "0"], ["2", "model-a", "0"],
                    ["2", "model-c", "0"]]
    no_sideways_scroll(browser)


@pytest.mark.parametrize("size", SIZES, ids=["1400", "400"])
def test_an_evals_row_is_a_link_and_its_checkbox_only_checks(
        browser: Any, served: Dict[str, Any], size: Tuple[int, int]) -> None:
    open_page(browser, served["url"], "#/evals", size)
    row = browser.find_element("css selector", f"#eval-runs tr[data-run-id='{served['run']}']")
    assert row.get_attribute("data-href") == f"#/eval/{served['run']}"
    row.find_element("css selector", "input[type=checkbox]").click()
    assert browser.execute_script("return location.hash") == "#/evals"
    browser.find_element("tag name", "body").send_keys("j")
    wait(browser, "return document.activeElement.matches('#eval-runs tbody tr')")
    browser.switch_to.active_element.send_keys("\ue007")  # Enter
    wait(browser, f"return document.body.dataset.ready === '#/eval/{served['run']}'")
    no_sideways_scroll(browser)


@pytest.mark.parametrize("width", [1400, 1024, 400])
def test_no_page_of_mine_scrolls_sideways(browser: Any, served: Dict[str, Any],
                                          width: int) -> None:
    for route in ("#/overview", "#/sessions", "#/session/conv-1", "#/prompts",
                  "#/experiments", "#/evals"):
        open_page(browser, served["url"], route, (width, 900))
        no_sideways_scroll(browser)


def test_the_diff_is_a_longest_common_subsequence(browser: Any, served: Dict[str, Any]) -> None:
    open_page(browser, served["url"], "#/prompts", SIZES[0])
    diff = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        import('/ui/prompts.js').then((m) => done(m.lineDiff('a\\nb\\nc\\nd', 'a\\nc\\nd\\ne')
          .map((r) => [r.op, r.a, r.b])));""")
    assert diff == [["same", "a", "a"], ["change", "b", None], ["same", "c", "c"],
                    ["same", "d", "d"], ["change", None, "e"]]

