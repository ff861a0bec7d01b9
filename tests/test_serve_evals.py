"""``fallom serve`` speaks the eval routes (issue #27 point 5): datasets from the catalog
and from stored traces, runs uploaded as ``fallom`` 0.2.7 and the TypeScript SDK upload
them, listed and read back; 0.2.7's own ``evals`` against a real ``fallom serve``."""

from __future__ import annotations

import gzip
import json
import os
import re
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests

import fallom
from fallom import evals
from fallom.server import FallomServer
from fallom.server._app import ServeLimits, serve
from fallom.server._evals import BUILTIN_METRICS
from fallom.server._ingest import MAX_DEPTH, MAX_ID_CHARS
from fallom.server._store import Store

from . import _serve_process as serve_process
from ._judge_server import FIXTURES, JudgeServer, prompt_score, run_reference
from .reference.make_fixtures import reference_python
from .test_serve_hostile import KEY, post

HEADERS = {"Authorization": f"Bearer {KEY}"}
fresh_evals, judge = FIXTURES[:2]  # a local judge, with evals.init not yet called
CATALOG = '''
[datasets.qa]
name = "Support QA"
description = "what customers ask"

[[datasets.qa.entries]]
input = "What is 2 + 2?"
expected_output = "4"
system_message = "You do sums."
metadata = { topic = "math", hard = false }

[[datasets.qa.entries]]
input = "Capital of France?"
'''


def result_027(text: str, output: str, model: str = "production", **scores: float
               ) -> Dict[str, Any]:
    """One result as 0.2.7's upload writes it: every field, null where unset."""
    return {"input": text, "system_message": None, "expected_output": None, "context": None,
            "metadata": None, "model": model, "output": output,
            "is_production": model == "production", **dict.fromkeys(BUILTIN_METRICS),
            **scores, "reasoning": {m: f"{m} is {v}" for m, v in scores.items()},
            "latency_ms": None, "tokens_in": None, "tokens_out": None, "cost": None}


def upload_027(name: str, results: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {"name": name, "description": None,
            "dataset_size": len({(r["input"], r["system_message"] or "") for r in results}),
            "judge_model": "openai/gpt-4o-mini", "results": results}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FallomServer]:
    catalog = tmp_path / "fallom.toml"
    catalog.write_text(CATALOG)
    running = serve(port=0, db=str(tmp_path / "t.db"), api_keys=[KEY], config=str(catalog),
                    limits=ServeLimits(max_records=20))
    yield running
    running.close()


def upload(server: FallomServer, body: Any) -> requests.Response:
    return post(server, json.dumps(body).encode(), path="/api/sdk-evals")


def get(server: FallomServer, path: str) -> requests.Response:
    return requests.get(server.url + path, headers=HEADERS, timeout=10)


def runs(server: FallomServer, query: str = "") -> List[Dict[str, Any]]:
    answer = get(server, f"/api/evals{query}")
    assert answer.status_code == 200, answer.text
    return list(answer.json()["runs"])


def figures(scores: List[float]) -> Dict[str, Any]:
    return {"avg": pytest.approx(sum(scores) / len(scores)), "min": min(scores),
            "max": max(scores), "count": len(scores)}


# -- runs ------------------------------------------------------------------------------------
def test_a_027_upload_is_stored_listed_and_read_back_whole(server: FallomServer) -> None:
    results = [result_027("q1", "a1", answer_relevancy=0.9, toxicity=0.0),
               result_027("q2", "a2", answer_relevancy=0.5, toxicity=0.25),
               result_027("q3", "a3", answer_relevancy=0.7)]
    results[2]["reasoning"]["toxicity"] = "Error: the judge answered no JSON"
    answer = upload(server, upload_027("nightly", results))
    assert answer.status_code == 200, answer.text
    run_id = answer.json()["run_id"]  # all that 0.2.7 and the TypeScript SDK read
    assert re.fullmatch(r"[0-9a-f]{32}", run_id)
    assert answer.json()["url"] == f"/evals/{run_id}"
    [listed] = runs(server)
    assert (listed["run_id"], listed["name"], listed["items"], listed["dataset_size"],
            listed["judge_model"], listed["models"]) == (
        run_id, "nightly", 3, 3, "openai/gpt-4o-mini", ["production"])
    assert listed["metrics"] == ["answer_relevancy", "toxicity"]
    assert listed["scores"] == {"answer_relevancy": figures([0.9, 0.5, 0.7]),
                                "toxicity": figures([0.0, 0.25])}  # the failed one not counted
    whole = get(server, f"/api/evals/{run_id}").json()
    assert [r["input"] for r in whole["results"]] == ["q1", "q2", "q3"]
    assert whole["results"][1]["scores"] == {"answer_relevancy": 0.5, "toxicity": 0.25}
    assert whole["results"][2]["reasoning"] == {
        "answer_relevancy": "answer_relevancy is 0.7",
        "toxicity": "Error: the judge answered no JSON"}
    assert whole["created_at"].endswith("Z")


def test_the_typescript_sdk_s_upload_without_undefined_fields_is_read(
        server: FallomServer) -> None:
    # JSON.stringify leaves out what is undefined: no description, system message, ...
    body = {"name": "ts run", "dataset_size": 1, "judge_model": "openai/gpt-4o-mini",
            "results": [{"input": "hello", "model": "production", "output": "hi",
                         "is_production": True, "coherence": 0.8, "bias": 0.1,
                         "reasoning": {"coherence": "flows", "bias": "none seen"}}]}
    answer = upload(server, body)
    assert answer.status_code == 200, answer.text
    [item] = get(server, f"/api/evals/{answer.json()['run_id']}").json()["results"]
    assert item["scores"] == {"coherence": 0.8, "bias": 0.1}
    assert (item["system_message"], item["metadata"], item["latency_ms"]) == (None, None, None)
    assert runs(server)[0]["metrics"] == ["coherence", "bias"]


def test_compare_models_runs_have_averages_per_model(server: FallomServer) -> None:
    failed = {**result_027("q2", "Error: model down", model="model-b"),
              "reasoning": {"error": "model down"}}
    results = [result_027("q1", "p1", toxicity=0.1), result_027("q2", "p2", toxicity=0.3),
               result_027("q1", "b1", model="model-b", toxicity=0.9), failed,
               {**result_027("q1", "c1", model="model-c", toxicity=0.5),
                "latency_ms": 120, "tokens_in": 10, "tokens_out": 4, "cost": 0.0002}]
    run_id = upload(server, upload_027("compare", results)).json()["run_id"]
    [listed] = runs(server)
    assert listed["models"] == ["production", "model-b", "model-c"]
    assert listed["metrics"] == ["toxicity"]  # a model's failure is not a metric
    assert listed["dataset_size"] == 2
    assert listed["by_model"] == {"production": {"toxicity": figures([0.1, 0.3])},
                                  "model-b": {"toxicity": figures([0.9])},
                                  "model-c": {"toxicity": figures([0.5])}}
    items = get(server, f"/api/evals/{run_id}").json()["results"]
    assert items[3]["reasoning"] == {"error": "model down"}
    assert items[3]["scores"] == {}
    assert (items[4]["latency_ms"], items[4]["tokens_in"], items[4]["cost"]) == (120, 10, 0.0002)


def test_custom_metrics_show_their_reasoning_and_scores_when_sent(server: FallomServer) -> None:
    # 0.2.7 uploads a custom metric's reasoning only; a result may add its score in "scores"
    only_reasoning = {**result_027("q1", "a1"), "reasoning": {"brand_voice": "on brand"}}
    with_score = {**result_027("q2", "a2"), "scores": {"brand_voice": 0.6},
                  "reasoning": {"brand_voice": "mostly"}}
    run_id = upload(server, upload_027("custom", [only_reasoning, with_score])).json()["run_id"]
    run = get(server, f"/api/evals/{run_id}").json()
    assert run["metrics"] == ["brand_voice"]
    assert run["scores"] == {"brand_voice": figures([0.6])}
    assert run["results"][0]["reasoning"] == {"brand_voice": "on brand"}


def test_runs_are_listed_newest_first_and_paged(server: FallomServer) -> None:
    for name in ("first", "second", "third"):
        assert upload(server, upload_027(name, [result_027("q", "a")])).status_code == 200
    assert [r["name"] for r in runs(server)] == ["third", "second", "first"]
    assert [r["name"] for r in runs(server, "?limit=2")] == ["third", "second"]
    assert [r["name"] for r in runs(server, "?limit=2&offset=2")] == ["first"]
    assert get(server, "/api/evals?limit=many").status_code == 400
    assert get(server, "/api/evals/no-such-run").status_code == 404


def _one(**fields: Any) -> Dict[str, Any]:
    return upload_027("bad", [{**result_027("q", "a"), **fields}])


@pytest.mark.parametrize(("body", "reason"), [
    ([1], "expected {name, description, dataset_size, judge_model, results}"),
    ({"results": [result_027("q", "a")]}, "name must be a non-empty string"),
    ({**_one(), "name": "n" * (MAX_ID_CHARS + 1)}, f"name must be at most {MAX_ID_CHARS}"),
    ({**_one(), "description": 3}, "description must be a string or null"),
    ({**_one(), "judge_model": ["x"]}, "judge_model must be a string or null"),
    ({**_one(), "dataset_size": -1}, "dataset_size must be a non-negative integer"),
    ({**_one(), "results": []}, "results must be a non-empty list"),
    ({**_one(), "results": {"0": {}}}, "results must be a non-empty list"),
    ({**_one(), "results": [result_027("q", "a"), 7]}, "results[1] must be an object"),
    (_one(input=None), "results[0].input must be a string"),
    (_one(output=42), "results[0].output must be a string or null"),
    (_one(model={"name": "x"}), "results[0].model must be a string or null"),
    (_one(toxicity="high"), "results[0].toxicity must be a number or null"),
    (_one(toxicity=True), "results[0].toxicity must be a number or null"),
    (_one(scores=[0.5]), "results[0].scores must be an object"),
    (_one(scores={"tone": "good"}), "results[0].scores.tone must be a number or null"),
    (_one(reasoning="fine"), "results[0].reasoning must be an object"),
    (_one(reasoning={"toxicity": 1}), "results[0].reasoning.toxicity must be a string"),
    (_one(context="a document"), "results[0].context must be a list of strings"),
    (_one(metadata=[1]), "results[0].metadata must be an object or null"),
    (_one(is_production="yes"), "results[0].is_production must be true, false or null"),
    (_one(latency_ms=-5), "results[0].latency_ms must be a non-negative number"),
    (_one(tokens_in=10**400), "results[0].tokens_in must be a non-negative number"),
    (_one(metadata={"deep": json.loads("[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2))}),
     f"results[0].metadata: nested more than {MAX_DEPTH} levels deep"),
])
def test_a_bad_upload_is_a_400_naming_the_field_and_stores_nothing(
        server: FallomServer, body: Any, reason: str) -> None:
    answer = upload(server, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"].startswith(reason)
    assert runs(server) == []


def test_what_json_cannot_carry_is_refused_by_name(server: FallomServer) -> None:
    body = json.dumps(_one()).replace('"toxicity": null', '"toxicity": NaN').encode()
    nan = post(server, body, path="/api/sdk-evals")
    assert (nan.status_code, nan.json()["error"]) == (
        400, "results[0].toxicity must be a number or null")
    lone = post(server, json.dumps(_one()).replace('"model": "production"',
                                                   '"model": "\\ud800"').encode(),
                path="/api/sdk-evals")
    assert (lone.status_code, lone.json()["error"]) == (
        400, "results[0].model is not valid Unicode (a lone surrogate)")
    assert runs(server) == []


def test_keys_and_limits_are_those_of_the_other_post_routes(server: FallomServer) -> None:
    body = json.dumps(_one()).encode()
    for key in ("Bearer wrong", ""):
        assert post(server, body, {"Authorization": key}, path="/api/sdk-evals").status_code \
            == 401
    assert requests.get(f"{server.url}/api/evals", timeout=10).status_code == 401
    too_many = upload(server, upload_027("big", [result_027(f"q{i}", "a") for i in range(21)]))
    assert (too_many.status_code, too_many.json()["error"]) == (
        413, "over 20 results in one request")  # max_records=20
    assert post(server, body, {"Content-Encoding": "br"}, path="/api/sdk-evals").status_code \
        == 415
    assert post(server, b'{"name": ', path="/api/sdk-evals").json()["error"].startswith(
        "malformed body")
    zipped = post(server, gzip.compress(body), {"Content-Encoding": "gzip"},
                  path="/api/sdk-evals")
    assert zipped.status_code == 200
    assert [r["name"] for r in runs(server)] == ["bad"]


def test_a_database_of_the_previous_schema_opens_and_takes_runs(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    Store(path).close()
    with sqlite3.connect(path) as db:  # as the schema before evaluations left it
        db.execute("DROP TABLE eval_items")
        db.execute("DROP TABLE eval_runs")
    running = serve(port=0, db=path, api_keys=[KEY])
    try:
        assert upload(running, _one()).status_code == 200
        assert [r["name"] for r in runs(running)] == ["bad"]
    finally:
        running.close()


def test_the_address_the_sdks_print_opens_the_page(server: FallomServer) -> None:
    run_id = upload(server, _one()).json()["run_id"]
    for path in (f"/evals/{run_id}", "/evals"):
        page = requests.get(server.url + path, timeout=10)  # the page holds no data: no key
        assert page.status_code == 200
        assert page.headers["Content-Type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        assert '<script type="module" src="/ui/app.js"' in page.text
    assert requests.get(f"{server.url}/evals/a/b", timeout=10).status_code == 401  # no route


# -- datasets --------------------------------------------------------------------------------
def test_a_catalog_dataset_is_served_as_both_references_read_it(server: FallomServer) -> None:
    answer = get(server, "/api/datasets/qa?include_entries=true")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "dataset": {"key": "qa", "name": "Support QA", "description": "what customers ask"},
        "version": {"version": 1, "entry_count": 2, "source": "catalog"},
        "entries": [{"input": "What is 2 + 2?", "output": "4", "systemMessage": "You do sums.",
                     "metadata": {"topic": "math", "hard": False}},
                    {"input": "Capital of France?", "output": None, "systemMessage": None,
                     "metadata": None}]}
    # 0.2.7's dataset_from_fallom asks without include_entries and reads the entries
    assert get(server, "/api/datasets/qa").json() == answer.json()
    head = get(server, "/api/datasets/qa?include_entries=false").json()
    assert "entries" not in head
    assert head["version"]["entry_count"] == 2
    assert get(server, "/api/datasets/nope").status_code == 404
    assert get(server, "/api/datasets/qa?version=9").json() == {
        "error": "no dataset 'qa' version 9"}
    assert get(server, "/api/datasets/qa?version=latest").status_code == 400


def test_an_edit_of_the_catalog_makes_a_new_version_and_the_old_one_still_answers(
        server: FallomServer) -> None:
    assert server.catalog.path is not None
    catalog = Path(server.catalog.path)
    catalog.write_text(CATALOG.replace('expected_output = "4"', 'expected_output = "four"'))
    os.utime(catalog, (time.time() + 5, time.time() + 5))
    latest = get(server, "/api/datasets/qa").json()
    assert (latest["version"]["version"], latest["entries"][0]["output"]) == (2, "four")
    assert get(server, "/api/datasets/qa?version=1").json()["entries"][0]["output"] == "4"
    os.utime(catalog, (time.time() + 10, time.time() + 10))  # touched, not changed
    assert get(server, "/api/datasets/qa").json()["version"]["version"] == 2


@pytest.mark.parametrize(("text", "reason"), [
    ('[datasets.qa]\nentries = []\n', "datasets.qa: entries must be a non-empty list"),
    ('[[datasets.qa.entries]]\ninput = 3\n', "datasets.qa: entries[0]: input must be a string"),
    ('[[datasets.qa.entries]]\ninput = "q"\noutput = "a"\n',
     "datasets.qa: entries[0]: unknown fields ['output']; an entry takes input, "
     "expected_output, system_message, metadata"),
    ('[[datasets.qa.entries]]\ninput = "q"\nmetadata = "x"\n',
     "datasets.qa: entries[0]: metadata must be a table"),
    ('[datasets.qa]\nlabel = "x"\n[[datasets.qa.entries]]\ninput = "q"\n',
     "datasets.qa: unknown fields ['label']"),
    ('[[datasets."a/b".entries]]\ninput = "q"\n', "datasets.a/b: the key must not contain '/'"),
])
def test_a_bad_catalog_dataset_is_named_at_start(tmp_path: Path, text: str, reason: str) -> None:
    catalog = tmp_path / "fallom.toml"
    catalog.write_text(text)
    with pytest.raises(ValueError) as refused:
        FallomServer(port=0, db=str(tmp_path / "t.db"), config=str(catalog))
    assert str(refused.value).startswith(f"{catalog}: {reason}")


def seed_traces(url: str) -> List[str]:
    """LLM calls traced by the real SDK: three in config "agent", one elsewhere."""
    fallom.init(api_key=KEY, traces_url=url)

    @fallom.trace_llm(name="chat")
    def chat(messages: List[Dict[str, str]]) -> str:
        fallom.current_span().set_model("model-a")
        return f"answer to {messages[-1]['content']}"

    traces = []
    for i, (config, session) in enumerate([("agent", "s-1"), ("agent", "s-1"),
                                           ("agent", "s-2"), ("other", "s-3")]):
        with fallom.session(config_key=config, session_id=session), \
                fallom.span("turn") as root:
            traces.append(root.trace_id)
            chat([{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": f"question {i}"}])
    assert fallom.flush(10)
    fallom.shutdown(5)
    return traces


def make(server: FallomServer, **body: Any) -> requests.Response:
    return post(server, json.dumps(body).encode(), path="/api/datasets")


def entries(server: FallomServer, key: str, version: Optional[int] = None
            ) -> List[Dict[str, Any]]:
    query = "" if version is None else f"?version={version}"
    return list(get(server, f"/api/datasets/{key}{query}").json()["entries"])


def test_a_dataset_is_made_of_stored_traces_and_versioned(server: FallomServer) -> None:
    traces = seed_traces(server.url)
    made = make(server, key="from-agent", name="Agent turns", config_key="agent", limit=2)
    assert made.status_code == 200, made.text
    assert made.json()["version"] == {"version": 1, "entry_count": 2, "source": "traces"}
    found = entries(server, "from-agent")
    # the two newest traces of the config, oldest first; the span that has input and output
    assert [e["input"] for e in found] == ["question 1", "question 2"]
    assert [e["output"] for e in found] == ["answer to question 1", "answer to question 2"]
    assert {e["systemMessage"] for e in found} == {"Be brief."}
    assert [e["metadata"]["trace_id"] for e in found] == traces[1:3]
    assert found[0]["metadata"]["session_id"] == "s-1"
    assert found[0]["metadata"]["model"] == "model-a"
    again = make(server, key="from-agent", name="Agent turns", config_key="agent", limit=2)
    assert again.json()["version"]["version"] == 1  # the same entries: the same version
    wider = make(server, key="from-agent", config_key="agent", limit=10)
    assert wider.json()["version"]["version"] == 2
    assert len(entries(server, "from-agent")) == 3
    assert len(entries(server, "from-agent", version=1)) == 2
    session = make(server, key="one-session", session_id="s-1")
    assert [e["input"] for e in entries(server, "one-session")] == ["question 0", "question 1"]
    assert session.json()["dataset"]["name"] == "one-session"
    started = get(server, f"/api/traces/{traces[3]}").json()["spans"][0]["start_time"]
    window = make(server, key="window", since=started, until="2999-01-01")
    assert [e["input"] for e in entries(server, "window")] == ["question 3"]
    assert window.status_code == 200


def test_a_dataset_from_a_record_of_an_earlier_sdk_reads_its_messages(
        server: FallomServer) -> None:
    record = {"trace_id": f"{5:032x}", "span_id": f"{1:016x}", "name": "openai.chat",
              "start_time": "2026-01-01T00:00:00Z", "status": "OK", "config_key": "old",
              "input": [{"role": "user", "content": [{"type": "text", "text": "part one"},
                                                     {"type": "text", "text": "part two"}]}],
              "output": {"text": "done", "toolCalls": [{"name": "lookup"}]}}
    assert post(server, json.dumps(record).encode()).status_code == 200
    assert make(server, key="old", config_key="old").status_code == 200
    assert entries(server, "old") == [{"input": "part one\npart two", "output": "done",
                                       "systemMessage": None, "metadata": {
                                           "trace_id": f"{5:032x}", "span_id": f"{1:016x}",
                                           "config_key": "old",
                                           "start_time": "2026-01-01T00:00:00Z"}}]


@pytest.mark.parametrize(("body", "status", "reason"), [
    ([], 400, "expected {key, name, description"),
    ({}, 400, "key must be a non-empty string"),
    ({"key": "a/b"}, 400, "key must not contain '/'"),
    ({"key": "k", "config_key": 3}, 400, "config_key must be a non-empty string"),
    ({"key": "k", "since": "yesterday"}, 400, "since: 'yesterday' is not an ISO 8601"),
    ({"key": "k", "until": "soon"}, 400, "until: 'soon' is not an ISO 8601"),
    ({"key": "k", "limit": 0}, 400, "limit must be an integer from 1 to 1000"),
    ({"key": "k", "limit": "5"}, 400, "limit must be an integer from 1 to 1000"),
    ({"key": "k", "config_key": "nothing"}, 400, "no stored trace matches"),
    ({"key": "qa"}, 409, "dataset 'qa' is defined in the catalog file"),
])
def test_a_dataset_request_that_cannot_be_made_says_why(
        server: FallomServer, body: Any, status: int, reason: str) -> None:
    answer = make(server, **body) if isinstance(body, dict) else \
        post(server, json.dumps(body).encode(), path="/api/datasets")
    assert answer.status_code == status, answer.text
    assert answer.json()["error"].startswith(reason)
    assert get(server, "/api/datasets/k").status_code == 404


# -- the SDKs' own evals against a real fallom serve ---------------------------------------
def test_this_sdk_s_evals_read_a_dataset_and_upload_runs(server: FallomServer,
                                                         judge: JudgeServer) -> None:
    evals.init(api_key=KEY, base_url=server.url, judge_base_url=judge.base_url)
    judged = evals.evaluate(dataset="qa", metrics=["toxicity", "coherence"], name="successor",
                            verbose=False)
    model = evals.create_model_from_callable(
        "echo", lambda messages: {"content": messages[-1]["content"], "tokens_in": 3})
    compared = evals.compare_models(dataset="qa", models=[model], metrics=["bias"],
                                    name="successor compare", verbose=False)
    listed = runs(server)
    assert [r["name"] for r in listed] == ["successor compare", "successor"]
    whole = get(server, f"/api/evals/{listed[1]['run_id']}").json()
    assert [i["input"] for i in whole["results"]] == ["What is 2 + 2?", "Capital of France?"]
    assert [i["scores"] for i in whole["results"]] == [
        {"toxicity": r.toxicity, "coherence": r.coherence} for r in judged]
    assert whole["results"][0]["reasoning"]["toxicity"] == judged[0].reasoning["toxicity"]
    assert listed[0]["models"] == ["production", "echo"]
    assert listed[0]["by_model"]["echo"]["bias"]["avg"] == pytest.approx(
        sum(r.bias for r in compared["echo"] if r.bias is not None) / 2)



DRIVE_DATASETS_027 = """
import json, sys
from fallom import evals

evals.init()  # FALLOM_API_KEY and FALLOM_BASE_URL from the environment
items = evals.dataset_from_fallom("qa")
goldens = evals.EvaluationDataset().pull("qa", version=1).goldens
evals.evaluate(dataset="qa", metrics=[], name="from the catalog", verbose=False)
json.dump({"items": [vars(i) for i in items], "goldens": [vars(g) for g in goldens]},
          open(sys.argv[1], "w"))
"""


@pytest.fixture(scope="module")
def python_027() -> Path:
    try:
        return reference_python()
    except RuntimeError as exc:  # no interpreter on this machine can run the reference
        pytest.skip(str(exc))


@pytest.mark.timeout(900)  # the first run also makes the reference's virtual environment
def test_027_evaluate_and_compare_models_upload_to_fallom_serve(
        python_027: Path, tmp_path: Path) -> None:
    judge = JudgeServer()
    proc, url = serve_process.launch("--db", str(tmp_path / "t.db"), "--api-key", KEY)
    items = [{"input": "What is 2 + 2?", "output": "4", "system_message": "You do sums."},
             {"input": "Capital of France?", "output": "Paris"}]
    try:
        job = {"kind": "evaluate", "base_url": url, "api_key": KEY, "items": items,
               "metrics": ["answer_relevancy", "toxicity"], "name": "0.2.7 evaluate"}
        run_reference(python_027, judge, job, tmp_path)
        run_reference(python_027, judge, {**job, "kind": "compare_models",
                                          "metrics": ["completeness"],
                                          "models": ["vendor/model-x"],
                                          "name": "0.2.7 compare"}, tmp_path)
        listed = requests.get(f"{url}/api/evals", headers=HEADERS, timeout=10).json()["runs"]
        run = requests.get(f"{url}/api/evals/{listed[1]['run_id']}", headers=HEADERS,
                           timeout=10).json()
    finally:
        serve_process.stop(proc)
        judge.close()
    assert [r["name"] for r in listed] == ["0.2.7 compare", "0.2.7 evaluate"]
    assert (listed[1]["items"], listed[1]["metrics"]) == (2, ["answer_relevancy", "toxicity"])
    assert listed[0]["models"] == ["production", "vendor/model-x"]
    assert listed[0]["by_model"]["vendor/model-x"]["completeness"]["count"] == 2
    judged = {r["json"]["messages"][-1]["content"] for r in judge.judge_requests()}
    for item in run["results"]:  # each score is the judge's answer to 0.2.7's prompt
        for metric, value in item["scores"].items():
            assert value in {prompt_score(p) for p in judged}, (metric, value)
        assert set(item["reasoning"]) == {"answer_relevancy", "toxicity"}
    assert listed[1]["scores"]["toxicity"]["avg"] == pytest.approx(
        sum(i["scores"]["toxicity"] for i in run["results"]) / 2)


@pytest.mark.timeout(900)
def test_027_reads_the_datasets_of_fallom_serve_through_fallom_base_url(
        python_027: Path, tmp_path: Path) -> None:
    catalog = tmp_path / "fallom.toml"
    catalog.write_text(CATALOG)
    proc, url = serve_process.launch("--db", str(tmp_path / "t.db"), "--api-key", KEY,
                                     "--config", str(catalog))
    out = tmp_path / "out.json"
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FALLOM_")}
        subprocess.run([str(python_027), "-I", "-c", DRIVE_DATASETS_027, str(out)], check=True,
                       timeout=120, capture_output=True,
                       env={**env, "FALLOM_BASE_URL": url, "FALLOM_API_KEY": KEY})
        listed = requests.get(f"{url}/api/evals", headers=HEADERS, timeout=10).json()["runs"]
    finally:
        serve_process.stop(proc)
    read = json.loads(out.read_text())
    assert read["items"] == [
        {"input": "What is 2 + 2?", "output": "4", "system_message": "You do sums.",
         "metadata": {"topic": "math", "hard": False}},
        {"input": "Capital of France?", "output": None, "system_message": None,
         "metadata": None}]
    assert [(g["input"], g["expected_output"]) for g in read["goldens"]] == [
        ("What is 2 + 2?", "4"), ("Capital of France?", None)]
    assert [(r["name"], r["items"], r["dataset_size"]) for r in listed] == [
        ("from the catalog", 2, 2)]
