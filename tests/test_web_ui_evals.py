"""The Evals page of ``fallom serve``'s web UI in a real headless Chromium (issue #27 pt 6):
runs with their averages (per model too), one run's items with each metric's score and
reasoning, two runs side by side with regressions marked as ``detect_regression`` does."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import requests

from fallom.evals import detect_regression

from . import _serve_process as serve_process
from . import test_web_ui as web_ui
from .test_serve_evals import result_027, upload_027

CANARY = web_ui.CANARY
KEY = web_ui.KEY
HEADERS = {"Authorization": f"Bearer {KEY}"}
browser = web_ui.browser  # the fixture: one headless Chromium for this module
pytestmark = web_ui.pytestmark

BASELINE = [result_027("q1", "a1", answer_relevancy=0.9, toxicity=0.2, completeness=0.8),
            result_027("q2", "a2", answer_relevancy=0.9, toxicity=0.2, completeness=0.8)]
CANDIDATE = [result_027(CANARY, "b1", answer_relevancy=0.6, toxicity=0.1, completeness=0.9,
                        coherence=0.5),
             result_027("q2", CANARY, answer_relevancy=0.8, toxicity=0.2, completeness=0.8,
                        coherence=0.7)]
CANDIDATE[0]["reasoning"]["answer_relevancy"] = f"off topic {CANARY}"
COMPARE = [result_027("q1", "p1", toxicity=0.1), result_027("q1", "x1", model="model-x",
                                                           toxicity=0.4),
           result_027("q1", "y1", model="model-y", toxicity=0.0)]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    proc, url = serve_process.launch("--db", str(tmp_path_factory.mktemp("evals") / "t.db"),
                                     "--api-key", KEY)
    try:
        ids = {}
        for name, results in (("baseline", BASELINE), (f"candidate {CANARY}", CANDIDATE),
                              ("models", COMPARE)):
            answer = requests.post(f"{url}/api/sdk-evals", json=upload_027(name, results),
                                   headers=HEADERS, timeout=10)
            answer.raise_for_status()
            ids[name.split()[0]] = answer.json()["run_id"]
        yield {"url": url, "ids": ids}
    finally:
        serve_process.stop(proc)


def api(served: Dict[str, Any], path: str) -> Any:
    return requests.get(served["url"] + path, headers=HEADERS, timeout=10).json()


def cells(browser: Any, selector: str) -> List[Dict[str, Any]]:
    """Each row of a table: its data attributes and its cells' text."""
    return list(browser.execute_script(f"""
        return [...document.querySelectorAll({selector!r})].map(r => ({{
          data: {{...r.dataset}},
          cells: [...r.querySelectorAll('td')].map(c => c.textContent),
          metrics: Object.fromEntries([...r.querySelectorAll('td[data-metric]')]
                                      .map(c => [c.dataset.metric, c.textContent]))}}))"""))


def canary_ran(browser: Any) -> bool:
    return bool(browser.execute_script(
        "return window.__alerted || document.querySelectorAll('main img').length > 0"))


def arm_canary(browser: Any) -> None:
    browser.execute_script("window.__alerted = false; "
                           "window.alert = () => { window.__alerted = true; };")


def test_the_runs_are_listed_with_their_averages_and_per_model(
        browser: Any, served: Dict[str, Any]) -> None:
    web_ui.open_page(browser, served["url"], "#/evals")
    assert browser.find_element("css selector", "nav a.active").text == "Evals"
    listed = {r["run_id"]: r for r in api(served, "/api/evals")["runs"]}
    rows = cells(browser, "#eval-runs tbody tr.clickable")
    assert [r["data"]["runId"] for r in rows] == [
        served["ids"]["models"], served["ids"]["candidate"], served["ids"]["baseline"]]
    for row in rows:
        run = listed[row["data"]["runId"]]
        shown_time = datetime.fromisoformat(run["created_at"].replace("Z", "+00:00")).astimezone(
        ).strftime("%Y-%m-%d %H:%M:%S")  # the browser's (this machine's) time zone
        assert row["cells"][1:5] == [run["name"], shown_time, ", ".join(run["models"]),
                                     str(run["items"])]
        assert row["metrics"] == {m: f"{run['scores'][m]['avg']:.3f}" if m in run["scores"]
                                  else "–" for m in row["metrics"]}
        assert set(run["scores"]) <= set(row["metrics"])
    assert rows[1]["cells"][1] == f"candidate {CANARY}"
    by_model = cells(browser, f"#eval-runs tr.model-row[data-run-id='{served['ids']['models']}']")
    shown = {r["data"]["model"]: r["metrics"]["toxicity"] for r in by_model}
    assert shown == {"production": "0.100", "model-x": "0.400", "model-y": "0.000"}


def test_one_run_shows_every_item_s_scores_and_reasoning_as_text(
        browser: Any, served: Dict[str, Any]) -> None:
    web_ui.open_page(browser, served["url"], "#/evals")
    arm_canary(browser)
    browser.find_element("css selector",
                         f"tr[data-run-id='{served['ids']['candidate']}'] td:nth-child(2)").click()
    web_ui.wait(browser, "return document.body.dataset.ready.startsWith('#/eval/')")
    run = api(served, f"/api/evals/{served['ids']['candidate']}")
    assert browser.find_element("id", "eval-name").text == f"candidate {CANARY}"
    rows = browser.execute_script("""
        return [...document.querySelectorAll('#eval-items tbody tr')].map(r =>
          Object.fromEntries([...r.querySelectorAll('td.score-cell')].map(c =>
            [c.dataset.metric, [c.querySelector('.score').textContent,
                                (c.querySelector('.reasoning') || {}).textContent]])))""")
    assert len(rows) == len(run["results"]) == 2
    for shown, item in zip(rows, run["results"]):
        assert set(shown) == {"answer_relevancy", "toxicity", "completeness", "coherence"}
        for metric, (score, reasoning) in shown.items():
            assert score == f"{item['scores'][metric]:.3f}"
            assert reasoning == item["reasoning"][metric]
    assert rows[0]["answer_relevancy"][1] == f"off topic {CANARY}"
    items = browser.find_element("id", "eval-items").text
    assert CANARY in items  # an input and an output: text, not markup
    assert not canary_ran(browser)


def test_two_runs_side_by_side_mark_what_detect_regression_finds(
        browser: Any, served: Dict[str, Any]) -> None:
    web_ui.open_page(browser, served["url"], "#/evals")
    for name in ("baseline", "candidate"):
        browser.find_element("css selector",
                             f"input[data-run-id='{served['ids'][name]}']").click()
    arm_canary(browser)
    browser.find_element("id", "compare").click()
    web_ui.wait(browser, "return document.body.dataset.ready.startsWith('#/compare/')")
    previous = api(served, f"/api/evals/{served['ids']['baseline']}")
    current = api(served, f"/api/evals/{served['ids']['candidate']}")
    found = detect_regression(current["scores"], previous["scores"], threshold=0.1)
    rows = {r["data"]["metric"]: r for r in cells(browser, "#eval-compare tbody tr")}
    assert set(rows) == {"answer_relevancy", "toxicity", "completeness", "coherence"}
    for metric, row in rows.items():
        change = found["details"].get(metric)
        assert row["data"]["regression"] == str(
            change is not None and change["delta"] < -0.1).lower()
        assert row["cells"][3] == ("–" if change is None else f"{change['delta']:+.3f}")
    assert [m for m, r in rows.items() if r["data"]["regression"] == "true"] == [
        "answer_relevancy"]  # 0.9 -> 0.7; toxicity fell 0.05, within the threshold
    assert found["detected"]
    assert browser.find_element("id", "regression-verdict").text.startswith("Regression")
    assert "regression" in browser.find_element(
        "css selector", "tr[data-metric=answer_relevancy]").get_attribute("class")
    paired = cells(browser, "#compare-items tbody tr")
    assert [r["metrics"]["answer_relevancy"] for r in paired] == ["– → 0.600", "0.900 → 0.800"]
    assert CANARY in browser.find_element("tag name", "main").text
    assert not canary_ran(browser)


def test_the_address_an_sdk_prints_opens_that_run(browser: Any, served: Dict[str, Any]) -> None:
    web_ui.open_page(browser, served["url"], "#/evals")  # the key, kept in this tab
    run_id = served["ids"]["baseline"]
    browser.get(f"{served['url']}/evals/{run_id}")
    web_ui.wait(browser, f"return document.body.dataset.ready === '#/eval/{run_id}'")
    assert browser.find_element("id", "eval-name").text == "baseline"
    assert browser.current_url == f"{served['url']}/#/eval/{run_id}"
    assert len(browser.find_elements("css selector", "#eval-items tbody tr")) == 2


def test_an_empty_server_says_how_to_fill_the_page(browser: Any, tmp_path: Path) -> None:
    proc, url = serve_process.launch("--db", str(tmp_path / "t.db"), "--api-key", KEY)
    try:
        web_ui.open_page(browser, url, "#/evals")
        assert "FALLOM_BASE_URL" in browser.find_element("id", "eval-runs").text
    finally:
        serve_process.stop(proc)
