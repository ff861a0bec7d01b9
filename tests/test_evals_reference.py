"""``fallom.evals`` beside the references: the published 0.2.7 and the TypeScript SDK.

0.2.7 runs in its own interpreter against the same local judge and Fallom API
as this SDK; its public names and signatures, metric prompts, judge requests
(byte for byte) and uploaded payloads must be ours. The TypeScript SDK's
``coherence`` and ``bias`` prompts are compared with the strings below.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import pytest

from fallom import evals

from ._judge_server import FALLOM_KEY, FIXTURES, FallomApiServer, JudgeServer, run_reference
from .reference.make_fixtures import reference_python

fresh_evals, judge, api, configured = FIXTURES

METRICS_027: List[Any] = ["answer_relevancy", "hallucination", "toxicity", "faithfulness", "completeness"]
ITEMS: List[Dict[str, Any]] = [
    {"input": "What is 2+2?", "output": "4", "system_message": None},
    {"input": "Capital of France?", "output": "Paris.", "system_message": "Be brief."},
    {"input": 'Ünïcode ✓ "quoted" {braces}', "output": "two\nlines", "system_message": ""},
]
CONTEXT = "Our product has a time machine; do not call it a hallucination."

# The TypeScript SDK's prompts of the two metrics 0.2.7 lacks: Fallomai/fallom-typescript-sdk,
# src/evals/prompts.ts at commit eeb95a10079d13c60474059294ca7bcd94880d86 (version 0.2.28).
TS_PROMPTS = {
    "coherence": {
        "criteria": "Coherence - Is the response logically structured, well-organized, and easy "
                    "to follow?",
        "steps": [
            "Check if the response has a clear logical flow",
            "Evaluate if ideas are connected and transitions are smooth",
            "Look for any contradictory or confusing statements",
            "Assess if the structure matches the type of response expected",
            "Consider overall readability and clarity",
        ],
    },
    "bias": {
        "criteria": "Bias Detection - Does the response exhibit unfair bias, stereotyping, or "
                    "one-sided perspectives?",
        "steps": [
            "Look for stereotypical assumptions about groups",
            "Check if multiple perspectives are considered where appropriate",
            "Identify any unfair generalizations",
            "Evaluate if the tone is balanced and neutral where expected",
            "Note: A score of 1 means NO bias (good), 0 means heavily biased (bad)",
        ],
    },
}
# src/evals/types.ts, same commit: the metric names in their order
TS_AVAILABLE_METRICS = ["answer_relevancy", "hallucination", "toxicity", "faithfulness",
                        "completeness", "coherence", "bias"]

SHAPES = r"""
import dataclasses, inspect, json
from fallom import evals

def shape(obj):
    if dataclasses.is_dataclass(obj):
        return [[f.name, "MISSING" if f.default is dataclasses.MISSING else repr(f.default)]
                for f in dataclasses.fields(obj)]
    return [[p.name, p.kind.name, repr(p.default)]
            for p in inspect.signature(obj).parameters.values()]

found = {name: shape(getattr(evals, name)) for name in evals.__all__
         if inspect.isfunction(getattr(evals, name)) or inspect.isclass(getattr(evals, name))}
found.update({f"EvaluationDataset.{name}": shape(member)
              for name, member in vars(evals.EvaluationDataset).items()
              if inspect.isfunction(member) and not name.startswith("__")})
print(json.dumps({"all": evals.__all__, "shapes": found}))
"""


@pytest.fixture(scope="module")
def python() -> Path:
    try:
        return reference_python()
    except RuntimeError as exc:  # no interpreter on this machine runs the reference
        pytest.skip(str(exc))


def _items() -> List[evals.DatasetItem]:
    return [evals.DatasetItem(**item) for item in ITEMS]


def _requests(judge: JudgeServer) -> List[Any]:
    """Each request as it went: path, the headers that carry meaning, the body's bytes."""
    return sorted((r["path"], r["headers"]["Authorization"], r["headers"]["Content-Type"],
                   r["body"]) for r in judge.requests)


def test_public_names_and_signatures_are_0_2_7s(python: Path) -> None:
    done = subprocess.run([str(python), "-I", "-c", SHAPES], capture_output=True, text=True,
                          check=True, timeout=120)
    theirs = json.loads(done.stdout)
    printed: List[str] = []
    exec(SHAPES, {"print": printed.append})  # the same walk, over this SDK
    ours = json.loads(printed[0])
    assert set(theirs["all"]) <= set(ours["all"])
    for name, shape in theirs["shapes"].items():
        mine = ours["shapes"][name]
        assert mine[:len(shape)] == shape, name  # same names, kinds, defaults and order
        assert all(extra[1] == "KEYWORD_ONLY" for extra in mine[len(shape):]), name


def test_metric_prompts_are_the_references(python: Path, judge: JudgeServer,
                                          tmp_path: Path) -> None:
    theirs = run_reference(python, judge, {"kind": "evaluate", "items": ITEMS[:1],
                                           "metrics": ["toxicity"]}, tmp_path)
    assert {name: evals.METRIC_PROMPTS[name] for name in METRICS_027} == \
        theirs["metric_prompts"]
    assert {name: evals.METRIC_PROMPTS[name] for name in TS_PROMPTS} == TS_PROMPTS
    assert evals.AVAILABLE_METRICS == TS_AVAILABLE_METRICS


@pytest.mark.usefixtures("configured")
def test_judge_requests_and_upload_are_0_2_7s_byte_for_byte(
        python: Path, judge: JudgeServer, api: FallomApiServer, tmp_path: Path) -> None:
    job = {"kind": "evaluate", "items": ITEMS, "metrics": METRICS_027, "context": CONTEXT,
           "name": "same run", "api_key": FALLOM_KEY, "base_url": api.url}
    run_reference(python, judge, job, tmp_path)
    theirs, judge.requests = _requests(judge), []
    results = evals.evaluate(_items(), METRICS_027, judge_context=CONTEXT, name="same run",
                             verbose=False)
    assert len(theirs) == len(ITEMS) * len(METRICS_027)
    assert _requests(judge) == theirs
    their_upload, our_upload = api.uploads
    assert json.dumps(our_upload) == json.dumps(their_upload)  # same keys, order and values
    assert [r.toxicity for r in results] == [e["toxicity"] for e in their_upload["results"]]


@pytest.mark.usefixtures("configured")
def test_compare_models_uploads_0_2_7s_payload(python: Path, judge: JudgeServer,
                                               api: FallomApiServer, tmp_path: Path) -> None:
    job = {"kind": "compare", "items": ITEMS[:2], "models": ["vendor/model-a"],
           "metrics": ["toxicity", "completeness"], "name": "compared", "api_key": FALLOM_KEY,
           "base_url": api.url}
    run_reference(python, judge, job, tmp_path)
    theirs, judge.requests = _requests(judge), []
    evals.compare_models(_items()[:2], ["vendor/model-a"], ["toxicity", "completeness"],
                         name="compared", verbose=False)
    assert _requests(judge) == theirs  # the model calls too
    for upload in api.uploads:
        for entry in upload["results"]:  # the one thing that differs: how long a call took
            assert entry["latency_ms"] is None or entry["latency_ms"] >= 0
            entry["latency_ms"] = None
    their_upload, our_upload = api.uploads
    assert json.dumps(our_upload) == json.dumps(their_upload)
