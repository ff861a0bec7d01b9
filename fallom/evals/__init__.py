"""Evaluations: score LLM outputs with an LLM judge (G-Eval), compare models, upload runs.

``from fallom import evals`` is 0.2.7's module, its names and signatures
unchanged, plus the TypeScript SDK's ``coherence`` and ``bias`` metrics,
``upload_results``, ``calculate_aggregate_scores`` and ``detect_regression``.
The judge is any OpenAI-compatible server (OpenRouter by default); calls run
concurrently, each a span of the run's one trace. Results go to
``POST {base_url}/api/sdk-evals``, which the Fallom cloud and ``fallom serve`` read.

Owns the evals' types, prompts, judge, model calls, datasets, runs and upload.
It sits at the top of the SDK's layers, beside ``fallom.trace``: it may import
``fallom._sdk``, ``fallom._session``, ``fallom.tracing``, ``fallom.protocol``,
``fallom.infra`` and ``fallom.exporters``, and nothing imports it but the facade.

Example::

    from fallom import evals

    evals.init()  # FALLOM_API_KEY; the judge: OPENROUTER_API_KEY
    results = evals.evaluate(
        dataset=[evals.DatasetItem(input="What is 2+2?", output="4")],
        metrics=["answer_relevancy", "faithfulness"],
    )
"""

from types import FunctionType

from fallom.evals._datasets import EvaluationDataset, dataset_from_fallom, dataset_from_traces
from fallom.evals._evaluate import compare_models, evaluate
from fallom.evals._metrics import custom_metric
from fallom.evals._models import (
    create_custom_model,
    create_model_from_callable,
    create_openai_model,
)
from fallom.evals._prompts import METRIC_PROMPTS
from fallom.evals._scores import calculate_aggregate_scores, detect_regression
from fallom.evals._settings import DEFAULT_JUDGE_MODEL, init
from fallom.evals._types import (
    AVAILABLE_METRICS,
    CustomMetric,
    DatasetInput,
    DatasetItem,
    EvalResult,
    Golden,
    LLMTestCase,
    MetricInput,
    MetricName,
    Model,
    ModelCallable,
    ModelResponse,
)
from fallom.evals._upload import upload_results

__all__ = [
    "AVAILABLE_METRICS",
    "CustomMetric",
    "DEFAULT_JUDGE_MODEL",
    "DatasetInput",
    "DatasetItem",
    "EvalResult",
    "EvaluationDataset",
    "Golden",
    "LLMTestCase",
    "METRIC_PROMPTS",
    "MetricInput",
    "MetricName",
    "Model",
    "ModelCallable",
    "ModelResponse",
    "calculate_aggregate_scores",
    "compare_models",
    "create_custom_model",
    "create_model_from_callable",
    "create_openai_model",
    "custom_metric",
    "dataset_from_fallom",
    "dataset_from_traces",
    "detect_regression",
    "evaluate",
    "init",
    "upload_results",
]

for _name in __all__:  # as the facade does: evals.EvalResult, not evals._types.EvalResult
    _public = globals()[_name]
    if isinstance(_public, (type, FunctionType)):
        _public.__module__ = __name__
del _name, _public
