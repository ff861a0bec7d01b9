"""Bad input: each mistake stopped with a message that names it, before any call; a model
that raises or a judge that hangs fails its item only; Ctrl-C uploads nothing partial
unless asked, and says so."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from typing import Any, Dict, List

import pytest

from fallom import evals

from ._judge_server import (
    FALLOM_KEY,
    FIXTURES,
    JUDGE_KEY,
    Answer,
    FallomApiServer,
    JudgeServer,
    subprocess_env,
)

fresh_evals, judge, api, configured = FIXTURES


@pytest.fixture
def nowhere(fresh_evals: None) -> None:
    """A judge nothing listens at: a check that let a call through would fail on it."""
    evals.init(judge_base_url="http://127.0.0.1:9/v1", judge_api_key=JUDGE_KEY)


def _items(count: int) -> List[evals.DatasetItem]:
    return [evals.DatasetItem(input=f"question {i}", output=f"answer {i}") for i in range(count)]


@pytest.mark.usefixtures("nowhere")
@pytest.mark.parametrize(("metrics", "error", "message"), [
    (["toxicty"], ValueError, "Invalid metric: toxicty. Available: ['answer_relevancy', "
                              "'hallucination', 'toxicity', 'faithfulness', 'completeness', "
                              "'coherence', 'bias']. Or use CustomMetric for custom metrics. "
                              "Did you mean 'toxicity'?"),
    ("toxicity", TypeError, "metrics must be a list of metric names, got the string "
                            "'toxicity': write metrics=['toxicity']"),
    ([{"name": "x"}], TypeError, "metrics[0] must be a metric name or a CustomMetric, got dict"),
    ([evals.custom_metric("output", "Is it short?", ["Count"])], ValueError,
     "CustomMetric 'output' is named like a field of EvalResult; choose another name"),
    ([evals.custom_metric("brief", "Is it short?", [])], ValueError,
     "CustomMetric 'brief' needs its steps: a non-empty list of strings"),
    (["bias", "bias"], ValueError, "metric 'bias' is asked for twice; each metric once"),
])
def test_a_wrong_metric_is_named_before_any_call(metrics: Any, error: type,
                                                 message: str) -> None:
    with pytest.raises(error) as raised:
        evals.evaluate(_items(2), metrics, verbose=False)
    assert str(raised.value) == message


@pytest.mark.usefixtures("nowhere")
@pytest.mark.parametrize(("arguments", "error", "message"), [
    ({"dataset": []}, ValueError, "dataset is empty: there is nothing to evaluate"),
    ({"test_cases": []}, ValueError, "test_cases is empty: there is nothing to evaluate"),
    ({}, ValueError, "Either 'dataset' or 'test_cases' must be provided"),
    ({"dataset": [{"input": "q", "output": "a"}]}, TypeError,
     "dataset[0] must be a DatasetItem or an LLMTestCase, got dict"),
    ({"dataset": [evals.Golden(input="q")]}, TypeError,
     "dataset[0] is a Golden, which has no output yet: run your pipeline on it first "
     "(EvaluationDataset.generate_test_cases)"),
    ({"dataset": [evals.DatasetItem("q", None)]}, TypeError,  # type: ignore[arg-type]
     "dataset[0].output must be text, got NoneType"),
    ({"test_cases": [evals.LLMTestCase("q", None)]}, TypeError,  # type: ignore[arg-type]
     "test_cases[0].actual_output must be text, got NoneType"),
    ({"dataset": [evals.DatasetItem("q", "a")], "max_concurrency": 0}, ValueError,
     "max_concurrency must be a whole number of at least 1, got 0"),
    ({"dataset": [evals.DatasetItem("q", "a")], "upload": "yes"}, ValueError,
     "upload must be True, False or \"partial\", got 'yes'"),
])
def test_a_wrong_dataset_or_option_is_named_before_any_call(
        arguments: Dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error) as raised:
        evals.evaluate(metrics=["toxicity"], verbose=False, **arguments)
    assert str(raised.value) == message


@pytest.mark.usefixtures("configured")
def test_a_stored_dataset_without_entries_is_named(judge: JudgeServer,
                                                  api: FallomApiServer) -> None:
    api.datasets["empty-set"] = []
    with pytest.raises(ValueError, match=r"^dataset 'empty-set' is empty: there is nothing to"):
        evals.evaluate("empty-set", ["toxicity"], verbose=False)
    with pytest.raises(ValueError, match=r"^Dataset 'absent' not found$"):
        evals.evaluate("absent", ["toxicity"], verbose=False)
    assert judge.requests == []


@pytest.mark.usefixtures("nowhere")
def test_two_models_of_one_name_are_refused() -> None:
    with pytest.raises(ValueError, match="two result groups would be named 'production'"):
        evals.compare_models(_items(1), ["m/a", evals.Model("production", lambda m: {})],
                             ["toxicity"], verbose=False)


def _broken(messages: List[Dict[str, str]]) -> Dict[str, Any]:
    raise RuntimeError("no GPU left")


@pytest.mark.usefixtures("configured")
def test_a_model_that_raises_or_answers_wrong_fails_its_items_only(judge: JudgeServer) -> None:
    results = evals.compare_models(
        _items(2), ["m/good", evals.create_model_from_callable("broken", _broken),
                    evals.create_model_from_callable(
                        "wordy", lambda messages: "just text")],  # type: ignore[arg-type,return-value]
        ["toxicity"], verbose=False)
    assert [r.output for r in results["broken"]] == [
        "Error: model 'broken' raised RuntimeError: no GPU left"] * 2
    assert results["broken"][0].reasoning == {"error": "model 'broken' raised RuntimeError: "
                                                       "no GPU left"}
    assert results["wordy"][1].output == ("Error: model 'wordy' returned str; it must return "
                                          "a dict with a 'content' string")
    assert all(r.toxicity is None for r in results["broken"] + results["wordy"])
    assert all(r.toxicity is not None for r in results["m/good"] + results["production"])
    assert len(judge.judge_requests()) == 2 * 2  # nothing judged for the models that failed


@pytest.mark.usefixtures("fresh_evals")
def test_a_judge_that_hangs_times_out_that_metric_and_the_run_finishes(
        judge: JudgeServer) -> None:
    evals.init(judge_base_url=judge.base_url, judge_api_key=JUDGE_KEY, judge_timeout=0.5)
    judge.script(Answer(hang=True), match="question 1")
    judge.script(Answer(delay=2.0), match="question 2")  # answers, but too late
    start = time.monotonic()
    results = evals.evaluate(_items(4), ["toxicity"], verbose=False)
    assert time.monotonic() - start < 5
    url = f"{judge.base_url}/chat/completions"
    for index in (1, 2):
        assert results[index].toxicity is None
        assert results[index].reasoning["toxicity"] == (
            f"Error: the judge at {url} did not answer within 0.5 s (timeout)")
    assert results[0].toxicity is not None
    assert results[3].toxicity is not None


INTERRUPTED = """
from fallom import evals
evals.init()
items = [evals.DatasetItem(input=f"question {{i}}", output="an answer") for i in range(10)]
evals.evaluate(items, ["toxicity"], name="interrupted", max_concurrency=2, verbose=False,
               upload={upload!r})
"""


def _interrupt(judge: JudgeServer, api: FallomApiServer, upload: Any) -> str:
    """Run 10 items, two at a time; the judge answers the first four and hangs on the rest;
    Ctrl-C once both workers wait on it."""
    for index in range(4, 10):
        judge.script(Answer(hang=True), match=f"**User Input:** question {index}\\n")
    env = subprocess_env(FALLOM_API_KEY=FALLOM_KEY, FALLOM_BASE_URL=api.url,
                         FALLOM_JUDGE_BASE_URL=judge.base_url, FALLOM_JUDGE_API_KEY=JUDGE_KEY)
    code = textwrap.dedent(INTERRUPTED.format(upload=upload))
    with subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        assert judge.wait_for_requests(6, timeout=30)  # four answered, two hanging
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in err
    return err


def test_an_interrupted_run_uploads_nothing_and_says_so(judge: JudgeServer,
                                                        api: FallomApiServer) -> None:
    err = _interrupt(judge, api, True)
    assert ("Evaluation interrupted: 4 of 10 results finished; nothing was uploaded (pass "
            "upload=\"partial\" to upload the finished ones).") in err
    assert api.uploads == []


def test_an_interrupted_run_uploads_its_finished_results_when_asked(
        judge: JudgeServer, api: FallomApiServer) -> None:
    err = _interrupt(judge, api, "partial")
    assert "Evaluation interrupted: 4 of 10 results finished; uploading those" in err
    (upload,) = api.uploads
    assert upload["name"] == "interrupted (partial)"
    assert [r["input"] for r in upload["results"]] == [f"question {i}" for i in range(4)]
    assert all(r["toxicity"] is not None for r in upload["results"])
