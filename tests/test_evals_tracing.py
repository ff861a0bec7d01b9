"""A run is one trace: a root span, an ``eval`` span per judge call, an ``llm`` span per
model call, with model, tokens and score; no content when ``capture_content`` is off."""

from __future__ import annotations

import json
from typing import Dict, List

import pytest

import fallom
from fallom import evals
from fallom.testing import CapturedSpans, capture_spans, view

from ._judge_server import FIXTURES, JUDGE_KEY, Answer, JudgeServer

fresh_evals, judge, api, configured = FIXTURES


def _own_model(messages: List[Dict[str, str]]) -> Dict[str, object]:
    return {"content": "OWN-ANSWER " + messages[-1]["content"], "tokens_in": 3,
            "tokens_out": 4, "cost": 0.5}


def _compare(judge: JudgeServer, item: evals.DatasetItem) -> None:
    evals.init(judge_base_url=judge.base_url, judge_api_key=JUDGE_KEY)
    evals.compare_models([item, evals.DatasetItem(input="second", output="two")],
                         ["m/a", evals.create_model_from_callable("own", _own_model)],
                         ["toxicity", "bias"], judge_context="CONTEXT-TEXT", verbose=False)


def test_every_call_of_a_run_is_a_span_of_its_one_trace(judge: JudgeServer,
                                                        spans: CapturedSpans) -> None:
    _compare(judge, evals.DatasetItem(input="first", output="one"))
    root = spans.by_name("evals.compare_models")
    assert "parent_span_id" not in root
    assert {r["trace_id"] for r in spans} == {root["trace_id"]}
    judged = [r for r in spans if r["kind"] == "eval"]
    assert len(judged) == 2 * 2 * 3  # items x metrics x (production and two models)
    assert sorted({r["name"] for r in judged}) == ["geval.bias", "geval.toxicity"]
    models = [r for r in spans if r["name"] == "evals.model"]
    assert sorted(r["model"] for r in models) == ["m/a", "m/a", "own", "own"]
    assert {r["kind"] for r in models} == {"llm"}
    assert {r["parent_span_id"] for r in judged + models} == {root["span_id"]}
    assert {r["model"] for r in judged} == {evals.DEFAULT_JUDGE_MODEL}
    assert all(view(r).completion_tokens == 7 for r in judged)
    assert all(0 <= r["attributes"]["eval.score"] <= 1 for r in judged)
    own = next(r for r in models if r["model"] == "own")
    assert (view(own).prompt_tokens, view(own).completion_tokens) == (3, 4)
    assert own["attributes"]["gen_ai.usage.cost"] == 0.5
    assert "OWN-ANSWER" in json.dumps(own)  # content is captured while capture_content is on


@pytest.mark.usefixtures("fresh_evals")
def test_a_failed_judge_call_is_an_error_span(judge: JudgeServer, spans: CapturedSpans) -> None:
    judge.script(Answer(status=400), match="first")
    evals.init(judge_base_url=judge.base_url, judge_api_key=JUDGE_KEY)
    evals.evaluate([evals.DatasetItem(input="first", output="one")], ["toxicity"],
                   verbose=False)
    failed = spans.by_name("geval.toxicity")
    assert failed["status"] == "ERROR"
    assert "answered 400" in failed["error_message"]


def test_no_content_reaches_the_spans_with_capture_content_off(judge: JudgeServer) -> None:
    judge.script(Answer(status=400), match=("SECRET-INPUT", "Toxicity - "))  # a failed call
    fallom.init(capture_content=False)
    with capture_spans() as records:
        _compare(judge, evals.DatasetItem(input="SECRET-INPUT", output="SECRET-OUTPUT",
                                          system_message="SECRET-SYSTEM"))
    assert len([r for r in records if r["kind"] == "eval"]) == 12
    text = json.dumps(list(records))
    for content in ("SECRET", "CONTEXT-TEXT", "OWN-ANSWER", "says:", "judged ",
                    "You are an expert", "answered 400"):
        assert content not in text, content
    assert all("eval.score" in r["attributes"] or r["status"] == "ERROR"
               for r in records if r["kind"] == "eval")
