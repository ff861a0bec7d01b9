"""The rest of the public API: init, datasets from Fallom and from traces, the dataset
workflow, uploads and their link, aggregates and regressions."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

import fallom
from fallom import evals
from fallom.testing import CapturedSpans

from ._judge_server import FALLOM_KEY, FIXTURES, FallomApiServer, JudgeServer

fresh_evals, judge, api, configured = FIXTURES

ENTRIES: List[Dict[str, Any]] = [{"input": "Hi?", "output": "Hello.", "systemMessage": "Be kind.",
            "metadata": {"source": "prod"}},
           {"input": "Bye?", "output": "Goodbye."}]


def _result(**scores: Any) -> evals.EvalResult:
    result = evals.EvalResult("in", "out", None, "production", True)
    for name, score in scores.items():
        setattr(result, name, score)
        result.reasoning[name] = "why"
    return result


@pytest.mark.usefixtures("fresh_evals")
def test_init_says_what_is_missing_or_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FALLOM_API_KEY", raising=False)
    with pytest.raises(ValueError, match=r"No API key provided\. Set FALLOM_API_KEY"):
        evals.init()
    with pytest.raises(ValueError, match="base_url must be an http"):
        evals.init(api_key="k", base_url="app.fallom.com")
    with pytest.raises(ValueError, match="judge_timeout must be a positive number"):
        evals.init(api_key="k", judge_timeout=0)
    evals.init(judge_base_url="http://127.0.0.1:1/v1")  # a judge alone: no key needed
    with pytest.raises(RuntimeError, match="evals not initialized"):
        evals.upload_results([], name="nothing")  # but uploads need one


@pytest.mark.usefixtures("fresh_evals")
def test_init_takes_the_key_fallom_init_was_given(api: FallomApiServer) -> None:
    fallom.init(api_key=FALLOM_KEY, tracing=False)
    evals.init(base_url=api.url)
    assert evals.upload_results([_result(toxicity=0.5)], "from fallom.init").endswith("/run-1")


@pytest.mark.usefixtures("configured")
def test_a_dataset_is_fetched_with_its_entries_and_version(
        api: FallomApiServer, judge: JudgeServer, capsys: pytest.CaptureFixture[str]) -> None:
    api.datasets["support qa"] = ENTRIES
    items = evals.dataset_from_fallom("support qa", version=2)
    assert api.gets == [{"path": "/api/datasets/support%20qa",
                         "query": {"include_entries": ["true"], "version": ["2"]}}]
    assert items == [evals.DatasetItem("Hi?", "Hello.", "Be kind.", {"source": "prod"}),
                     evals.DatasetItem("Bye?", "Goodbye.")]
    assert "✓ Loaded dataset 'The support qa' (version 2) with 2 entries" in \
        capsys.readouterr().out
    results = evals.evaluate("support qa", ["toxicity"], verbose=False)
    assert [r.input for r in results] == ["Hi?", "Bye?"]
    assert api.gets[-1]["query"] == {"include_entries": ["true"]}


@pytest.mark.usefixtures("fresh_evals")
def test_a_dataset_needs_init_and_a_key_it_may_read(api: FallomApiServer) -> None:
    api.datasets["qa"] = ENTRIES
    with pytest.raises(RuntimeError, match=r"Call evals\.init"):
        evals.dataset_from_fallom("qa")
    evals.init(api_key="wrong-key", base_url=api.url)
    with pytest.raises(ValueError, match="Access denied to dataset 'qa'"):
        evals.EvaluationDataset().pull("qa")


@pytest.mark.usefixtures("configured")
def test_the_dataset_workflow_pull_generate_evaluate(api: FallomApiServer) -> None:
    api.datasets["qa"] = ENTRIES
    dataset = evals.EvaluationDataset().pull("qa")
    assert dataset.dataset_key == "qa"
    assert [g.expected_output for g in dataset.goldens] == ["Hello.", "Goodbye."]
    seen: List[List[Dict[str, str]]] = []

    def app(messages: List[Dict[str, str]]) -> Dict[str, Any]:
        seen.append(messages)
        return {"content": messages[-1]["content"].upper(), "context": ["doc"]}

    dataset.generate_test_cases(app, include_context=True)
    assert seen[0] == [{"role": "system", "content": "Be kind."},
                       {"role": "user", "content": "Hi?"}]
    results = evals.evaluate(test_cases=dataset.test_cases, metrics=["faithfulness"],
                             verbose=False)
    assert [(r.output, r.expected_output, r.context) for r in results] == [
        ("HI?", "Hello.", ["doc"]), ("BYE?", "Goodbye.", ["doc"])]
    assert len(dataset.clear_test_cases().test_cases) == 0
    assert len(dataset.add_golden(evals.Golden("More?"))) == 3


@pytest.mark.usefixtures("configured")
def test_an_upload_prints_the_runs_page(api: FallomApiServer,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    evals.evaluate([evals.DatasetItem("q", "a")], ["bias"], name="nightly", description="d")
    assert f"✅ Results uploaded to Fallom! View at: {api.url}/evals/run-1" in \
        capsys.readouterr().out
    (upload,) = api.uploads
    assert (upload["name"], upload["description"], upload["dataset_size"],
            upload["judge_model"]) == ("nightly", "d", 1, "openai/gpt-4o-mini")
    assert evals.evaluate([evals.DatasetItem("q", "a")], ["bias"], upload=False,
                          verbose=False)
    assert len(api.uploads) == 1


@pytest.mark.usefixtures("configured")
def test_upload_results_sends_results_held(api: FallomApiServer) -> None:
    held = {"production": [_result(toxicity=0.2)], "m": [_result(toxicity=0.4, brand=0.9)]}
    url = evals.upload_results(held, "by hand", judge_model="judge/x")
    assert url == f"{api.url}/evals/run-1"
    (upload,) = api.uploads
    assert [r["toxicity"] for r in upload["results"]] == [0.2, 0.4]
    assert upload["judge_model"] == "judge/x"


@pytest.mark.usefixtures("fresh_evals")
def test_a_failed_upload_says_why_and_returns_nothing(
        capsys: pytest.CaptureFixture[str]) -> None:
    evals.init(api_key=FALLOM_KEY, base_url="http://127.0.0.1:9")
    assert evals.upload_results([_result(bias=1.0)], "lost") == ""
    assert "⚠️  Failed to upload results: cannot reach Fallom at http://127.0.0.1:9/api/" \
           "sdk-evals: connection refused" in capsys.readouterr().out


def test_aggregates_and_regressions() -> None:
    before = [_result(toxicity=0.9, brand=0.8), _result(toxicity=0.7, brand=None)]
    after = [_result(toxicity=0.5, brand=0.8), _result(toxicity=0.5)]
    aggregates = evals.calculate_aggregate_scores(before)
    assert aggregates == {"toxicity": {"avg": pytest.approx(0.8), "min": 0.7, "max": 0.9,
                                       "count": 2},
                          "brand": {"avg": 0.8, "min": 0.8, "max": 0.8, "count": 1}}
    found = evals.detect_regression(after, aggregates)
    assert found["detected"] is True
    assert found["details"]["toxicity"]["delta"] == pytest.approx(-0.3)
    assert found["details"]["brand"]["delta"] == pytest.approx(0.0)
    assert evals.detect_regression(after, before, threshold=0.5)["detected"] is False
    with pytest.raises(TypeError, match="pass one model's"):
        evals.calculate_aggregate_scores({"m": after})  # type: ignore[arg-type]


def test_a_dataset_from_traces_of_0_2_x_and_of_this_sdk(spans: CapturedSpans) -> None:
    legacy = {"attributes": {"gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": "S",
                             "gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": "Q1",
                             "gen_ai.completion.0.content": "A1"}}
    with fallom.span("chat", kind="llm") as current:
        current.set_attribute("fallom.raw.request", {"messages": [
            {"role": "system", "content": "S2"}, {"role": "user", "content": "Q2"}]})
        current.set_attribute("fallom.raw.response", {"text": "A2"})
    items = evals.dataset_from_traces([legacy, {"attributes": {}}, *spans])
    assert items == [evals.DatasetItem("Q1", "A1", "S"), evals.DatasetItem("Q2", "A2", "S2")]
