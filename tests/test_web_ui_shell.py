"""The web UI's shell in headless Chromium: layout at every width, search and time on the traces
list, the key form, unknown addresses, the empty list, the favicon, rows as links, dark theme.

A real ``fallom serve``, records posted over HTTP; each point at 1400x900 and 400x800.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests

from . import _serve_process as serve_process
from . import test_web_ui as web_ui

KEY = web_ui.KEY
CANARY = web_ui.CANARY
HEADERS = {"Authorization": f"Bearer {KEY}"}
browser = web_ui.browser  # the fixture: one headless Chromium for this module
pytestmark = web_ui.pytestmark
wait = web_ui.wait
SIZES = [(1400, 900), (400, 800)]
LONG = "summarise-the-quarterly-report-for-the-board-" * 6
SESSION = "session-7f3a9c2e-5b1d-4e8f-9a6c-0d2b4e6f8a1c"


def iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def trace(name: str, at: datetime, status: str = "OK", **extra: Any) -> Dict[str, Any]:
    """A one-span LLM trace as the SDK records it."""
    return {"trace_id": uuid.uuid4().hex, "span_id": uuid.uuid4().hex[:16], "name": name,
            "start_time": iso(at), "duration_ms": 1234.5, "status": status, "kind": "llm",
            "model": "gpt-4o-mini", "prompt_tokens": 120, "completion_tokens": 30,
            "total_tokens": 150, "input": {"messages": [{"role": "user", "content": name}]},
            "output": "done", **extra}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    """Traces now, 30 min, 3 h and 26 years ago; one with long values, one with the canary."""
    now = datetime.now(timezone.utc)
    records = {
        "refund": trace("refund-bot", now - timedelta(minutes=2), session_id=SESSION,
                        customer_id="cust-1", config_key="support"),
        "checkout": trace("checkout-flow", now - timedelta(minutes=30), status="ERROR",
                          error_message="card declined"),
        "canary": trace(CANARY, now - timedelta(hours=3), customer_id=CANARY),
        "long": trace(LONG, now - timedelta(hours=5), customer_id="customer-" + "x" * 120,
                      config_key="config-" + "y" * 120, session_id="s-" + "z" * 200,
                      model="a-very-long-model-name-" * 8),
        "old": trace("old-batch", datetime(2000, 1, 1, tzinfo=timezone.utc)),
    }
    proc, url = serve_process.launch(
        "--db", str(tmp_path_factory.mktemp("shell") / "t.db"), "--api-key", KEY)
    try:
        requests.post(f"{url}/v1/traces", json={"traces": list(records.values())},
                      headers=HEADERS, timeout=10).raise_for_status()
        yield {"url": url, "ids": {k: r["trace_id"] for k, r in records.items()}}
    finally:
        serve_process.stop(proc)


@pytest.fixture
def empty(tmp_path: Path) -> Iterator[str]:
    """A server with no trace yet."""
    proc, url = serve_process.launch("--db", str(tmp_path / "t.db"),
                                     "--api-key", KEY)
    try:
        yield url
    finally:
        serve_process.stop(proc)


def sized(browser: Any, width: int, height: int) -> None:
    """The viewport itself at width x height (headless Chromium: the window is the viewport)."""
    browser.set_window_size(width, height)
    inner = browser.execute_script("return [window.innerWidth, window.innerHeight]")
    if inner[0] != width:
        browser.set_window_size(2 * width - inner[0], 2 * height - inner[1])


def open_page(browser: Any, url: str, route: str = "#/traces") -> None:
    web_ui.open_page(browser, url, route)


def listed(browser: Any) -> List[str]:
    return list(browser.execute_script(
        "return [...document.querySelectorAll('#trace-rows tr[data-trace-id]')]"
        ".map(r => r.dataset.traceId)"))


def choose(browser: Any, selector: str, value: str) -> None:
    from selenium.webdriver.support.select import Select

    Select(browser.find_element("css selector", selector)).select_by_value(value)


def page_scrolls_sideways(browser: Any) -> Any:
    return browser.execute_script(
        "const d = document.documentElement;"
        "return d.scrollWidth > window.innerWidth ? [d.scrollWidth, window.innerWidth] : null")


# -- 1. layout ------------------------------------------------------------------------------

ROUTES = ["#/traces", "#/sessions", "#/overview", "#/experiments", "#/prompts", "#/evals",
          "#/nonsense"]


@pytest.mark.parametrize(("width", "height"), [(1400, 900), (1024, 800), (400, 800)])
def test_no_page_scrolls_sideways_and_the_nav_fits(browser: Any, served: Dict[str, Any],
                                                  width: int, height: int) -> None:
    sized(browser, width, height)
    for route in [*ROUTES, f"#/trace/{served['ids']['long']}", f"#/session/{SESSION}"]:
        open_page(browser, served["url"], route)
        assert browser.execute_script("return document.querySelector('header').scrollWidth "
                                      "<= window.innerWidth"), route
        outside = browser.execute_script(
            "return [...document.querySelectorAll('header a')].filter(a => "
            "a.getBoundingClientRect().right > window.innerWidth "
            "|| a.getBoundingClientRect().width === 0).map(a => a.textContent)")
        assert outside == [], (route, outside)
        assert page_scrolls_sideways(browser) is None, (route, width)


@pytest.mark.parametrize(("width", "height"), [(1400, 900), (1024, 800), (400, 800)])
def test_the_list_leads_with_what_people_scan_and_fits(browser: Any, served: Dict[str, Any],
                                                       width: int, height: int) -> None:
    sized(browser, width, height)
    open_page(browser, served["url"])
    assert page_scrolls_sideways(browser) is None
    headers = browser.execute_script(
        "return [...document.querySelectorAll('#traces th')].map(h => h.textContent)")
    assert headers[:6] == ["Time (UTC)", "Name", "Status", "Duration", "Tokens", "Model"]
    assert headers[6:9] == ["Session", "Customer", "Config"]
    row = f"tr[data-trace-id='{served['ids']['refund']}']"
    shown = browser.execute_script(f"""
        const row = document.querySelector("{row}");
        const box = row.getBoundingClientRect();
        return [...row.querySelectorAll('td')].filter(c => getComputedStyle(c).display !== 'none')
          .map(c => [c.className.split(' ')[0], c.textContent,
                     c.getBoundingClientRect().right <= window.innerWidth, box.width])""")
    by_column = {c[0]: c for c in shown}
    for column, text in (("col-name", "refund-bot"), ("col-status", "OK"),
                         ("col-duration", "1.23 s"), ("col-tokens", "150")):
        assert by_column[column][2], (column, "off screen")
        assert by_column[column][1] == text, column
    if width >= 1024:  # the whole table fits: nothing to scroll, even the long values
        assert browser.execute_script(
            "const t = document.getElementById('traces');"
            "return t.scrollWidth <= t.parentElement.clientWidth")
    else:  # a card a trace: no header row, the name leads
        assert browser.execute_script(
            "return getComputedStyle(document.querySelector('#traces thead')).display") == "none"


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_an_id_is_short_whole_on_hover_and_copied_on_click(
        browser: Any, served: Dict[str, Any], width: int, height: int) -> None:
    sized(browser, width, height)
    browser.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": served["url"], "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    open_page(browser, served["url"])
    chip = browser.find_element(
        "css selector", f"tr[data-trace-id='{served['ids']['refund']}'] .id-chip")
    assert chip.text == SESSION[:8]
    assert SESSION in chip.get_attribute("title")
    chip.click()
    wait(browser, "return document.querySelector('.id-chip.copied') !== null")
    assert browser.execute_async_script(
        "navigator.clipboard.readText().then(arguments[0], e => arguments[0](String(e)))"
    ) == SESSION
    assert browser.execute_script("return location.hash").startswith("#/traces")  # not opened


@pytest.mark.parametrize(("scheme", "dark"), [("dark", True), ("light", False)])
def test_the_theme_follows_the_system_setting(browser: Any, served: Dict[str, Any],
                                              scheme: str, dark: bool) -> None:
    sized(browser, 1400, 900)
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {
        "features": [{"name": "prefers-color-scheme", "value": scheme}]})
    try:
        for route in ("#/traces", f"#/trace/{served['ids']['refund']}"):
            open_page(browser, served["url"], route)
            background, text = browser.execute_script(
                "const s = getComputedStyle(document.body); return [s.backgroundColor, s.color]")
            assert (luminance(background) < 0.2) is dark, (route, background)
            assert (luminance(text) > 0.6) is dark, (route, text)
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def luminance(css: str) -> float:
    """0 (black) to 1 (white), from 'rgb(r, g, b)'."""
    red, green, blue = (int(v) for v in css[css.index("(") + 1:css.index(")")].split(",")[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


# -- 2. search and time ---------------------------------------------------------------------

@pytest.mark.parametrize(("width", "height"), SIZES)
def test_search_and_time_range_filter_and_stay_in_the_address(
        browser: Any, served: Dict[str, Any], width: int, height: int) -> None:
    ids = served["ids"]
    sized(browser, width, height)
    open_page(browser, served["url"])
    assert sorted(listed(browser)) == sorted(ids.values())
    box = browser.find_element("css selector", "input[name=q]")
    box.send_keys("refund\t")
    wait(browser, f"return document.querySelectorAll('#trace-rows tr').length === 1 && "
                  f"!!document.querySelector(\"tr[data-trace-id='{ids['refund']}']\")")
    assert "q=refund" in browser.execute_script("return location.hash")
    box.clear()
    box.send_keys("\t")
    wait(browser, "return document.querySelectorAll('#trace-rows tr').length === 5")
    for since, expected in (("15m", ["refund"]), ("1h", ["refund", "checkout"]),
                            ("24h", ["refund", "checkout", "canary", "long"]),
                            ("", list(ids))):
        choose(browser, "select[name=range]", since)
        wait(browser, f"return [...document.querySelectorAll('#trace-rows tr')].map("
                      f"r => r.dataset.traceId).sort().join() === "
                      f"{','.join(sorted(ids[k] for k in expected))!r}")
        assert (f"since={since}" in browser.execute_script("return location.hash")) is bool(since)
    choose(browser, "select[name=range]", "1h")
    choose(browser, "select[name=status]", "ERROR")
    wait(browser, f"return document.querySelectorAll('#trace-rows tr').length === 1 && "
                  f"!!document.querySelector(\"tr[data-trace-id='{ids['checkout']}']\")")
    browser.refresh()  # a reload (or the link shared) keeps the filters
    wait(browser, "return document.body.dataset.ready && "
                  "document.querySelectorAll('#trace-rows tr').length === 1")
    assert listed(browser) == [ids["checkout"]]
    assert browser.find_element("css selector", "select[name=range]").get_attribute(
        "value") == "1h"
    assert browser.find_element("css selector", "select[name=status]").get_attribute(
        "value") == "ERROR"


def test_a_link_with_any_filter_opens_the_list_filtered(browser: Any,
                                                       served: Dict[str, Any]) -> None:
    sized(browser, 1400, 900)
    model = "a-very-long-model-name-" * 8
    open_page(browser, served["url"], f"#/traces?model={model}&since=24h")
    assert listed(browser) == [served["ids"]["long"]]
    assert browser.find_element("css selector", "#more-filters summary").text == "More filters (1)"
    assert browser.find_element("css selector", "input[name=model]").get_attribute(
        "value") == model
    assert browser.find_element("css selector", "select[name=range]").get_attribute(
        "value") == "24h"


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_a_custom_range_is_sent_as_iso_instants(browser: Any, served: Dict[str, Any],
                                                width: int, height: int) -> None:
    sized(browser, width, height)
    open_page(browser, served["url"])
    assert not browser.find_element("id", "custom-range").is_displayed()
    choose(browser, "select[name=range]", "custom")
    assert browser.find_element("id", "custom-range").is_displayed()
    browser.execute_script("""
        for (const [name, value] of [['from', '1999-12-31T00:00'], ['to', '2000-01-02T00:00']]) {
          const input = document.querySelector(`input[name=${name}]`);
          input.value = value;
          input.dispatchEvent(new Event('change'));
        }""")
    wait(browser, f"return [...document.querySelectorAll('#trace-rows tr')].map("
                  f"r => r.dataset.traceId).join() === {served['ids']['old']!r}")
    address = browser.execute_script("return decodeURIComponent(location.hash)")
    assert "since=1999-12-31T00:00:00.000Z" in address  # this machine's browser is on UTC
    assert "until=2000-01-02T00:00:00.000Z" in address


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_times_are_local_and_labelled_with_utc_on_hover(
        browser: Any, served: Dict[str, Any], width: int, height: int) -> None:
    sized(browser, width, height)
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Kolkata"})
    try:
        open_page(browser, served["url"])
        header = browser.find_element("css selector", "#traces th.col-time")
        assert header.get_attribute("textContent") == "Time (GMT+5:30)"
        cell = browser.find_element(
            "css selector", f"tr[data-trace-id='{served['ids']['old']}'] td.col-time")
        assert cell.text == "2000-01-01 05:30:00"
        assert cell.get_attribute("title") == "2000-01-01 00:00:00.000000 UTC"
    finally:
        browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": ""})


# -- 3. the small things --------------------------------------------------------------------

@pytest.mark.parametrize(("width", "height"), SIZES)
def test_a_wrong_key_is_said_to_be_refused(browser: Any, served: Dict[str, Any],
                                           width: int, height: int) -> None:
    sized(browser, width, height)
    browser.get(f"{served['url']}/?load={uuid.uuid4().hex}#/traces")
    browser.execute_script("sessionStorage.clear()")
    browser.get(f"{served['url']}/?load={uuid.uuid4().hex}#/traces")
    wait(browser, "return !!document.getElementById('api-key')")
    assert not browser.find_elements("id", "key-refused")  # first time: just asked
    browser.find_element("id", "api-key").send_keys("not-the-key")
    browser.find_element("id", "api-key").submit()
    message = wait(browser, "const e = document.getElementById('key-refused');"
                            "return e && e.offsetWidth > 0 && e.textContent")
    assert message.startswith("That key was refused")
    assert browser.execute_script("return sessionStorage.getItem('fallom.apiKey')") is None
    box = browser.find_element("id", "api-key")
    assert box.get_attribute("aria-invalid") == "true"
    box.send_keys(KEY)
    box.submit()
    wait(browser, "return document.body.dataset.ready === '#/traces'")
    assert browser.execute_script("return sessionStorage.getItem('fallom.apiKey')") == KEY
    assert len(listed(browser)) == 5


@pytest.mark.parametrize(("width", "height"), SIZES)
@pytest.mark.parametrize(("route", "what"), [("#/nonsense", "No such page"),
                                        ("#/trace/doesnotexist", "No such trace"),
                                        (f"#/trace/{'0' * 32}", "No such trace"),
                                        ("#/traces/too/deep", "No such page")])
def test_an_address_that_names_nothing_says_so_with_a_way_back(
        browser: Any, served: Dict[str, Any], route: str, what: str, width: int,
        height: int) -> None:
    sized(browser, width, height)
    open_page(browser, served["url"], route)
    assert browser.find_element("css selector", "#not-found h2").text == what
    assert "no route" not in browser.find_element("tag name", "main").text
    browser.find_element("id", "back-to-traces").click()
    wait(browser, "return document.body.dataset.ready === '#/traces' && "
                  "document.querySelectorAll('#trace-rows tr').length === 5")


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_an_empty_list_shows_how_to_send_a_first_trace(browser: Any, empty: str,
                                                       width: int, height: int) -> None:
    sized(browser, width, height)
    open_page(browser, empty)
    state = browser.find_element("id", "empty-state")
    assert state.is_displayed()
    assert f"export FALLOM_TRACES_URL={empty}" in state.text
    assert "import fallom\nfallom.init()" in state.text
    assert not browser.find_element("id", "traces-list").is_displayed()
    assert "–" not in browser.find_element("id", "page-info").get_attribute("textContent")
    assert page_scrolls_sideways(browser) is None
    record = trace(f"first-{width}", datetime.now(timezone.utc))
    requests.post(f"{empty}/v1/traces", json=record, headers=HEADERS,
                  timeout=5).raise_for_status()
    wait(browser, f"return !!document.querySelector(\"tr[data-trace-id='{record['trace_id']}']\")"
                  " && document.getElementById('empty-state').offsetParent === null")
    assert browser.find_element("id", "traces-list").is_displayed()


def test_a_filter_matching_nothing_says_so_and_pages_never_show_1_0(
        browser: Any, served: Dict[str, Any]) -> None:
    sized(browser, 1400, 900)
    open_page(browser, served["url"], "#/traces?q=nothingmatchesthis")
    assert browser.find_element("id", "trace-rows").text == "No traces match these filters."
    assert browser.find_element("id", "page-info").text == ""
    assert not browser.find_elements("id", "empty-state")
    open_page(browser, served["url"], "#/traces?offset=50")
    assert browser.find_element("id", "trace-rows").text == "No older traces."
    assert "1–0" not in browser.find_element("tag name", "main").text
    assert browser.find_element("id", "next").get_attribute("disabled")


def test_the_favicon_is_linked_and_served_without_a_key(served: Dict[str, Any]) -> None:
    page = requests.get(served["url"] + "/", timeout=5).text
    assert '<link rel="icon" href="/ui/favicon.svg" type="image/svg+xml">' in page
    icon = requests.get(served["url"] + "/ui/favicon.svg", timeout=5)
    assert icon.status_code == 200
    assert icon.headers["Content-Type"].startswith("image/svg+xml")
    assert icon.text.lstrip().startswith("<svg")


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_rows_are_links_with_enter_and_j_k(browser: Any, served: Dict[str, Any],
                                           width: int, height: int) -> None:
    sized(browser, width, height)
    open_page(browser, served["url"])
    order = listed(browser)
    first = browser.find_element("css selector", f"tr[data-trace-id='{order[0]}']")
    assert (first.get_attribute("role"), first.get_attribute("tabindex")) == ("link", "0")
    body = browser.find_element("tag name", "body")
    body.send_keys("jjjk")
    assert selected(browser) == order[1]
    assert browser.execute_script("return document.activeElement.dataset.traceId") == order[1]
    browser.switch_to.active_element.send_keys("\ue007")  # Enter
    wait(browser, f"return document.body.dataset.ready === '#/trace/{order[1]}'")
    browser.back()
    wait(browser, "return document.body.dataset.ready === '#/traces' && "
                  "document.querySelectorAll('#trace-rows tr').length === 5")
    row = browser.find_element("css selector", f"tr[data-trace-id='{order[2]}']")
    browser.execute_script("arguments[0].focus()", row)
    row.send_keys("\ue007")
    wait(browser, f"return document.body.dataset.ready === '#/trace/{order[2]}'")


def selected(browser: Any) -> Optional[str]:
    return browser.execute_script(  # type: ignore[no-any-return]
        "const r = document.querySelector('#trace-rows tr.selected');"
        "return r && r.dataset.traceId")


# -- 4. stored strings are text -------------------------------------------------------------

@pytest.mark.parametrize(("width", "height"), SIZES)
def test_the_canary_is_text_in_the_list(browser: Any, served: Dict[str, Any], width: int,
                                        height: int) -> None:
    sized(browser, width, height)
    open_page(browser, served["url"])
    web_ui_arm(browser)
    row = browser.find_element("css selector", f"tr[data-trace-id='{served['ids']['canary']}']")
    assert row.find_element("css selector", "td.col-name").get_attribute("textContent") == CANARY
    assert row.find_element("css selector", "td.col-customer").get_attribute(
        "textContent") == CANARY
    assert browser.execute_script("return document.querySelectorAll('main img').length") == 0
    assert browser.execute_script("return window.__alerted") is False


def web_ui_arm(browser: Any) -> None:
    browser.execute_script("window.__alerted = false; "
                           "window.alert = () => { window.__alerted = true; };")
