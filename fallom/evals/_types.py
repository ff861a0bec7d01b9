"""The evals' data: dataset items, models, metrics and results, as 0.2.7 declares them.

Field names, order and defaults are 0.2.7's, so positional constructors written
for it still work; ``coherence`` and ``bias`` are the TypeScript SDK's extra metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Literal, Optional, Union

__all__ = ["AVAILABLE_METRICS", "CustomMetric", "DatasetInput", "DatasetItem", "EvalResult",
           "Golden", "LLMTestCase", "MetricInput", "MetricName", "Model", "ModelCallable",
           "ModelResponse", "SCORE_FIELDS"]

MetricName = Literal["answer_relevancy", "hallucination", "toxicity", "faithfulness",
                     "completeness", "coherence", "bias"]

# {"content": str, "tokens_in"?: int, "tokens_out"?: int, "cost"?: float}
ModelResponse = Dict[str, Any]

# Takes the chat messages ([{"role": ..., "content": ...}]) and returns a ModelResponse.
ModelCallable = Callable[[List[Dict[str, str]]], ModelResponse]

# 0.2.7's five, then the TypeScript SDK's two
AVAILABLE_METRICS: List[MetricName] = ["answer_relevancy", "hallucination", "toxicity",
                                       "faithfulness", "completeness", "coherence", "bias"]

# The score fields of EvalResult and of the uploaded payload, in 0.2.7's order.
SCORE_FIELDS = tuple(AVAILABLE_METRICS)


@dataclass
class CustomMetric:
    """A metric of your own, judged with G-Eval like the built-in ones.

    Args:
        name: its identifier (``"brand_alignment"``): the key of its score and reasoning.
        criteria: what it evaluates, one sentence the judge reads first.
        steps: the evaluation steps the judge follows, in order.
    """

    name: str
    criteria: str
    steps: List[str]


MetricInput = Union[MetricName, CustomMetric]


@dataclass
class DatasetItem:
    """One item to evaluate: the input, the output produced for it, and its context."""

    input: str
    output: str
    system_message: Optional[str] = None
    metadata: Optional[Dict[str, Any]] = None


# A list of items, or the key of a dataset stored in Fallom.
DatasetInput = Union[List[DatasetItem], str]


@dataclass
class Model:
    """A model for ``compare_models``: called through ``call_fn``, or by name.

    Without ``call_fn`` the model is called by its name at the judge's
    OpenAI-compatible endpoint (OpenRouter by default, as in 0.2.7).
    """

    name: str
    call_fn: Optional[ModelCallable] = None


@dataclass
class EvalResult:
    """The scores (0 to 1, None when not judged) and the judge's reasoning for one item.

    A custom metric's score is an attribute named after it; ``reasoning`` maps
    each metric's name to the judge's summary, or to ``"Error: ..."`` when it failed.
    """

    input: str
    output: str
    system_message: Optional[str]
    model: str
    is_production: bool
    expected_output: Optional[str] = None
    context: Optional[List[str]] = None
    metadata: Optional[Dict[str, Any]] = None
    answer_relevancy: Optional[float] = None
    hallucination: Optional[float] = None
    toxicity: Optional[float] = None
    faithfulness: Optional[float] = None
    completeness: Optional[float] = None
    coherence: Optional[float] = None
    bias: Optional[float] = None
    reasoning: Dict[str, str] = field(default_factory=dict)
    latency_ms: Optional[int] = None
    tokens_in: Optional[int] = None
    tokens_out: Optional[int] = None
    cost: Optional[float] = None


@dataclass
class Golden:
    """A dataset entry to run your own pipeline on: an input and what it should give."""

    input: str
    expected_output: Optional[str] = None
    system_message: Optional[str] = None
    context: Optional[List[str]] = None
    metadata: Optional[Dict[str, Any]] = None


@dataclass
class LLMTestCase:
    """An input with the output your pipeline actually gave, ready for ``evaluate``."""

    input: str
    actual_output: str
    expected_output: Optional[str] = None
    system_message: Optional[str] = None
    context: Optional[List[str]] = None
    metadata: Optional[Dict[str, Any]] = None
