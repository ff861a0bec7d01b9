"""The trace page in a real headless Chromium at 1400x900 and 400x800 (issue 29, points 1, 2
and 4): header totals, a resizable and collapsible waterfall, the span panel's attributes,
an LLM span's messages as a chat with its raw JSON one click away, and "no such trace".

A real ``fallom serve`` (a catalog with a price), records posted over HTTP.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import requests

from . import _serve_process as serve_process
from ._browser import MISSING, chromium
from .test_web_ui import CANARY, KEY, open_page, wait

pytestmark = MISSING

SIZES = [(1400, 900), (400, 800)]
LONG_ATTRIBUTE = "gen_ai.response.finish_reasons"
MESSAGES = [
    {"role": "system", "content": "You are a support bot."},
    {"role": "user", "content": [{"type": "text", "text": f"My order {CANARY} is late"},
                                 {"type": "image_url",
                                  "image_url": {"url": "https://example.invalid/receipt.png"}}]},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "lookup_order", "arguments": json.dumps({"order": CANARY})}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "shipped yesterday"},
]


def record(trace_id: str, number: int, name: str, parent: Any = None,
           **extra: Any) -> Dict[str, Any]:
    linked = {} if parent is None else {"parent_span_id": f"{parent:016x}"}
    return {"trace_id": trace_id, "span_id": f"{number:016x}", "name": name, **linked,
            "start_time": f"2026-03-01T10:00:00.{number * 1000:06d}Z", "duration_ms": 40 - (number % 16) * 4,
            "status": "OK", "session_id": f"s-{trace_id[:6]}", "config_key": "bot", **extra}


def support_trace(trace_id: str, base: int) -> List[Dict[str, Any]]:
    """A root, an LLM call with a conversation, and a retrieval step with three children."""
    llm = record(trace_id, base + 1, "chat.completions.create", base, kind="llm",
                 model="gpt-4o-2024-08-06", attributes={
                     "fallom.sdk_version": "2", "fallom.method": "chat.completions.create",
                     LONG_ATTRIBUTE: ["stop"], CANARY: "an attribute named like markup",
                     "fallom.raw.request": json.dumps({"model": "gpt-4o", "messages": MESSAGES}),
                     "fallom.raw.response": json.dumps({"text": "It arrives tomorrow.",
                                                        "finishReason": "stop"}),
                     "fallom.raw.usage": json.dumps({"prompt_tokens": 1200,
                                                     "completion_tokens": 300,
                                                     "total_tokens": 1500})})
    other = record(trace_id, base + 2, "classify", base, kind="llm", model="house-model",
                   attributes={"fallom.raw.usage": json.dumps({"prompt_tokens": 10,
                                                               "completion_tokens": 2})})
    retrieve = record(trace_id, base + 3, "retrieve", base, kind="retrieval")
    chunks = [record(trace_id, base + 4 + i, f"chunk-{i}", base + 3) for i in range(3)]
    return [record(trace_id, base, "support-bot"), llm, other, retrieve, *chunks]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    tmp_path: Path = tmp_path_factory.mktemp("ui-trace")
    config = tmp_path / "fallom.toml"
    config.write_text('[prices."gpt-4o"]\ninput = 2.50\noutput = 10.00\n')
    proc, url = serve_process.launch("--db", str(tmp_path / "t.db"), "--config", str(config),
                                     "--api-key", KEY)
    try:
        trace_id = uuid.uuid4().hex
        requests.post(f"{url}/v1/traces", json={"traces": support_trace(trace_id, 0x100)},
                      timeout=10, headers={"Authorization": f"Bearer {KEY}"}).raise_for_status()
        yield {"url": url, "trace": trace_id}
    finally:
        serve_process.stop(proc)


@pytest.fixture(params=SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def sized(request: pytest.FixtureRequest, browser: Any) -> Iterator[Any]:
    browser.set_window_size(*request.param)
    yield browser
    browser.set_window_size(1400, 900)


def open_trace(browser: Any, served: Dict[str, Any]) -> None:
    """The trace page as a first visit sees it: no label width remembered."""
    open_page(browser, served["url"], f"#/trace/{served['trace']}")
    if browser.execute_script("return localStorage.getItem('fallom.labelWidth')") is not None:
        browser.execute_script("localStorage.removeItem('fallom.labelWidth')")
        open_page(browser, served["url"], f"#/trace/{served['trace']}")


def select_row(browser: Any, name: str) -> None:
    browser.execute_script("""
        const row = [...document.querySelectorAll('#waterfall .row')]
          .find(r => r.querySelector('.label .name').textContent === arguments[0]);
        row.click();""", name)
    wait(browser, "return document.querySelector('.row.selected .name').textContent === "
                  f"{json.dumps(name)}")


def no_sideways_scroll(browser: Any) -> None:
    widths = browser.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths


def test_the_header_shows_the_traces_tokens_and_cost_as_the_api_totals_them(
        sized: Any, served: Dict[str, Any]) -> None:
    open_trace(sized, served)
    trace = requests.get(f"{served['url']}/api/traces/{served['trace']}", timeout=5,
                         headers={"Authorization": f"Bearer {KEY}"}).json()
    llm = [s for s in trace["spans"] if s.get("kind") == "llm"]
    totals = trace.get("totals") or {
        "input_tokens": sum(s["prompt_tokens"] for s in llm),
        "output_tokens": sum(s["completion_tokens"] for s in llm),
        "total_tokens": sum(s["total_tokens"] for s in llm), "cost_usd": None,
        "unpriced_models": []}
    shown = sized.find_element("id", "trace-totals").text
    assert (f"{totals['input_tokens']:,} in · {totals['output_tokens']:,} out · "
            f"{totals['total_tokens']:,} tokens") in shown
    assert totals["total_tokens"] == 1512
    if totals["cost_usd"] is None:
        assert "$" not in shown
    else:  # 1200 in at $2.50 and 300 out at $10.00 a million tokens
        assert totals["cost_usd"] == pytest.approx(0.006)
        assert "$0.0060" in shown
    if totals["unpriced_models"]:
        assert f"{len(totals['unpriced_models'])} model" in shown
        assert "unpriced" in shown
    no_sideways_scroll(sized)


def test_an_unknown_or_malformed_trace_id_says_so_with_a_way_back(
        sized: Any, served: Dict[str, Any]) -> None:
    for wrong in ("doesnotexist", uuid.uuid4().hex):
        open_page(sized, served["url"], f"#/trace/{wrong}")
        assert "No such trace" in sized.find_element("tag name", "main").text
        sized.find_element("id", "back-to-traces").click()
        wait(sized, "return document.body.dataset.ready === '#/traces'")


def test_an_llm_span_reads_as_a_chat_with_the_raw_json_one_click_away(
        sized: Any, served: Dict[str, Any]) -> None:
    open_trace(sized, served)
    sized.execute_script("window.__alerted = false; window.alert = () => { window.__alerted = true; };")
    select_row(sized, "chat.completions.create")
    shown = sized.execute_script("""
        return [...document.querySelectorAll('#span-chat .chat-msg')].map(m =>
          [m.dataset.role, m.querySelector('.chat-role').textContent, m.innerText])""")
    assert [role for role, _, _ in shown] == ["system", "user", "assistant", "tool", "assistant"]
    assert "You are a support bot." in shown[0][2]
    assert f"My order {CANARY} is late" in shown[1][2]
    assert "[image]" in shown[1][2]
    assert "https://example.invalid/receipt.png" in shown[1][2]
    assert "lookup_order" in shown[2][2]
    assert json.dumps({"order": CANARY}, indent=2) in shown[2][2]  # the arguments, pretty
    assert "call_1" in shown[3][1]
    assert "shipped yesterday" in shown[3][2]
    assert "It arrives tomorrow." in shown[4][2]
    panel = "#span-panel"
    assert sized.execute_script(f"return document.querySelectorAll('{panel} img').length") == 0
    assert sized.execute_script("return window.__alerted") is False
    assert not sized.find_element("id", "span-input").is_displayed()
    sized.find_element("id", "raw-toggle").click()  # one click: today's folded JSON
    wait(sized, "return !document.getElementById('span-raw').hidden")
    raw = json.loads(sized.find_element("id", "span-input").text)
    assert raw == {"messages": MESSAGES} or raw == MESSAGES
    assert not sized.find_element("id", "span-chat").is_displayed()
    sized.find_element("id", "raw-toggle").click()
    wait(sized, "return !document.getElementById('span-chat').hidden")
    no_sideways_scroll(sized)


def test_attribute_names_never_overlap_their_values(
        sized: Any, served: Dict[str, Any]) -> None:
    open_trace(sized, served)
    select_row(sized, "chat.completions.create")
    pairs = sized.execute_script("""
        const dts = [...document.querySelectorAll('#span-attributes dt')];
        return dts.map(dt => {
          const a = dt.getBoundingClientRect(), b = dt.nextElementSibling.getBoundingClientRect();
          return [dt.textContent, dt.title, a.right, a.bottom, b.left, b.top,
                  dt.scrollWidth - dt.clientWidth];
        })""")
    names = [p[0] for p in pairs]
    assert LONG_ATTRIBUTE in names
    assert CANARY in names
    for name, title, right, bottom, left, top, overflow in pairs:
        assert title == name
        assert overflow <= 0, name
        assert right <= left + 0.5 or bottom <= top + 0.5, name  # beside it, or above it
    if sized.execute_script("return window.innerWidth") <= 500:  # narrow: name above value
        assert all(bottom <= top + 0.5 for _, _, _, bottom, _, top, _ in pairs)
    assert sized.execute_script("return document.querySelectorAll('#span-panel img').length") == 0


def test_the_trace_page_has_no_sideways_scroll_and_stacks_when_narrow(
        browser: Any, served: Dict[str, Any]) -> None:
    try:
        for width, height in ((1400, 900), (1024, 800), (400, 800)):
            browser.set_window_size(width, height)
            open_trace(browser, served)
            select_row(browser, "chat.completions.create")
            no_sideways_scroll(browser)
            fall, panel = browser.execute_script("""
                return ['waterfall', 'span-panel'].map(id => {
                  const r = document.getElementById(id).getBoundingClientRect();
                  return [r.left, r.top, r.right, r.bottom, r.width];
                })""")
            if width <= 500:  # the waterfall above the panel, both the page's width
                assert fall[3] <= panel[1]
                assert fall[4] > width * 0.8
                bars = browser.execute_script("return document.querySelector("
                                              "'#waterfall .row .track').clientWidth")
                assert bars >= 60  # room left for the bars
            else:
                assert fall[2] <= panel[0]
    finally:
        browser.set_window_size(1400, 900)


def test_labels_show_name_model_tokens_and_duration_and_the_column_resizes(
        sized: Any, served: Dict[str, Any]) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    open_trace(sized, served)
    label = sized.execute_script("""
        const row = document.querySelector("#waterfall .row[data-span-id='0000000000000101']");
        const l = row.querySelector('.label');
        return [l.title, l.scrollWidth, l.clientWidth, l.textContent]""")
    assert label[0].startswith("chat.completions.create · gpt-4o-2024-08-06 · 1,500 tok · ")
    if sized.execute_script("return window.innerWidth") > 1000:  # wide: nothing cut
        assert label[1] <= label[2] + 1, label
    before = int(sized.execute_script("return document.getElementById('waterfall')"
                                      ".dataset.labelWidth"))
    handle = sized.find_element("id", "label-resizer")
    ActionChains(sized).click_and_hold(handle).move_by_offset(-40, 0).release().perform()
    wait(sized, f"return Number(document.getElementById('waterfall').dataset.labelWidth) < {before}")
    after = int(sized.execute_script("return document.getElementById('waterfall')"
                                     ".dataset.labelWidth"))
    assert after == pytest.approx(max(before - 40, 140), abs=3)
    column = sized.execute_script("return document.querySelector('#waterfall .row .label')"
                                  ".getBoundingClientRect().width")
    assert column == pytest.approx(after, abs=1)
    assert sized.execute_script("return localStorage.getItem('fallom.labelWidth')") == str(after)
    open_page(sized, served["url"], f"#/trace/{served['trace']}")  # remembered on a new load
    assert sized.execute_script("return document.getElementById('waterfall')"
                                ".dataset.labelWidth") == str(after)
    no_sideways_scroll(sized)


def test_subtrees_collapse_and_expand_by_click_and_by_arrow_keys(
        sized: Any, served: Dict[str, Any]) -> None:
    open_trace(sized, served)
    shown = ("return [...document.querySelectorAll('#waterfall .row')]"
             ".filter(r => r.offsetParent !== null).map(r => r.querySelector('.name').textContent)")
    everything = ["support-bot", "chat.completions.create", "classify", "retrieve",
                  "chunk-0", "chunk-1", "chunk-2"]
    assert sized.execute_script(shown) == everything
    toggles = sized.execute_script("return [...document.querySelectorAll('#waterfall .row')]"
                                   ".filter(r => r.querySelector('button.twisty'))"
                                   ".map(r => r.querySelector('.name').textContent)")
    assert toggles == ["support-bot", "retrieve"]
    retrieve = sized.find_element("css selector", "#waterfall .row[data-span-id='0000000000000103']")
    retrieve.find_element("css selector", "button.twisty").click()
    wait(sized, f"return JSON.stringify(({shown.replace('return ', '')})) === "
                f"{json.dumps(json.dumps(everything[:4], separators=(',', ':')))}")
    assert retrieve.find_element("css selector", "button.twisty").text == "▸"
    body = sized.find_element("tag name", "body")
    body.send_keys("\ue014")  # → expands the selected (collapsed) row
    wait(sized, "return document.querySelectorAll('#waterfall .row:not([hidden])').length === 7")
    body.send_keys("\ue015\ue015")  # ↓ ↓ to chunk-1
    wait(sized, "return document.querySelector('.row.selected .name').textContent === 'chunk-1'")
    body.send_keys("\ue012")  # ← on a leaf: to its parent
    wait(sized, "return document.querySelector('.row.selected .name').textContent === 'retrieve'")
    body.send_keys("\ue012")  # ← again: collapses it
    wait(sized, "return document.querySelectorAll('#waterfall .row:not([hidden])').length === 4")
    body.send_keys("\ue015")  # ↓ skips the hidden rows: nothing below
    body.send_keys("\ue013\ue013")  # ↑ ↑ over the shown rows only
    wait(sized, "return document.querySelector('.row.selected .name').textContent === "
                "'chat.completions.create'")
    select_row(sized, "support-bot")
    body.send_keys("\ue012")  # ← on the root: the whole trace folds into one row
    wait(sized, "return document.querySelectorAll('#waterfall .row:not([hidden])').length === 1")
    no_sideways_scroll(sized)
