"""Evaluation runs as both reference SDKs upload them (``POST /api/sdk-evals``).

``fallom`` 0.2.7 and the TypeScript SDK send the same body: ``name``,
``description``, ``dataset_size``, ``judge_model`` and ``results``, one per item
(per model for ``compare_models``), each with the seven built-in metrics'
scores as fields and the judge's ``reasoning`` per metric. The TypeScript SDK
leaves out what is undefined; 0.2.7 sends nulls. A custom metric's score is not
in either (only its reasoning): a result may carry them in ``scores``.

Each field is checked here, the reason naming it; a run is stored whole with
its per-metric (and per-model) figures, computed once.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

from fallom.server._ingest import MAX_ID_CHARS, id_reason, json_text, storable

__all__ = ["BUILTIN_METRICS", "Run", "aggregate", "prepare_run"]

BUILTIN_METRICS = ("answer_relevancy", "hallucination", "toxicity", "faithfulness",
                   "completeness", "coherence", "bias")
_TEXTS = ("output", "system_message", "expected_output")
_AMOUNTS = ("latency_ms", "tokens_in", "tokens_out", "cost")
_NUMBER_MAX = 1e15
# A reasoning under this name is not a metric's: compare_models' note of a model that failed.
_ITEM_ERROR = "error"


class Run(NamedTuple):
    """A checked upload: the run's own fields, its items and their figures."""

    name: str
    description: Optional[str]
    judge_model: Optional[str]
    dataset_size: int
    items: List[Dict[str, Any]]
    summary: Dict[str, Any]


def _finite(value: Any) -> bool:
    """A JSON number every reader takes (Python's json reads NaN, and ints of any size)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and abs(value) <= _NUMBER_MAX  # False for NaN too


def _text_reason(label: str, value: Any, limit: Optional[int] = None) -> Optional[str]:
    """Why ``value`` cannot be an optional text (a string or null), if it cannot."""
    if value is None:
        return None
    if not isinstance(value, str):
        return f"{label} must be a string or null"
    if limit is not None and len(value) > limit:
        return f"{label} must be at most {limit} characters"
    if not storable(value):
        return f"{label} is not valid Unicode (a lone surrogate)"
    return None


def _scores(label: str, result: Mapping[str, Any]) -> Tuple[Dict[str, Any], Optional[str]]:
    """The built-in metrics' fields and the ``scores`` object, as one map."""
    found: Dict[str, Any] = {}
    for name in BUILTIN_METRICS:
        value = result.get(name)
        if value is not None and not _finite(value):
            return {}, f"{label}.{name} must be a number or null"
        if value is not None:
            found[name] = value
    extra = result.get("scores")
    if extra is None:
        return found, None
    if not isinstance(extra, dict):
        return {}, f"{label}.scores must be an object of metric names to numbers"
    for name, value in extra.items():
        reason = id_reason(f"{label}.scores: a metric name", name)
        if reason is None and value is not None and not _finite(value):
            reason = f"{label}.scores.{name[:40]} must be a number or null"
        if reason is not None:
            return {}, reason
        found.setdefault(name, value)
    return found, None


def _reasoning(label: str, value: Any) -> Tuple[Dict[str, str], Optional[str]]:
    if value is None:
        return {}, None
    if not isinstance(value, dict):
        return {}, f"{label}.reasoning must be an object of metric names to text"
    for name, text in value.items():
        reason = id_reason(f"{label}.reasoning: a metric name", name) or \
            _text_reason(f"{label}.reasoning.{name[:40]}", text)
        if reason is not None:
            return {}, reason
    return {k: v for k, v in value.items() if v is not None}, None


def _plain_reason(label: str, result: Mapping[str, Any]) -> Optional[str]:
    """Why a field besides the scores and reasoning cannot be stored, if one cannot."""
    if not isinstance(result.get("input"), str):
        return f"{label}.input must be a string"
    for field in ("input", *_TEXTS, "model"):
        reason = _text_reason(f"{label}.{field}", result.get(field),
                              MAX_ID_CHARS if field == "model" else None)
        if reason is not None:
            return reason
    if not isinstance(result.get("is_production"), (bool, type(None))):
        return f"{label}.is_production must be true, false or null"
    context = result.get("context")
    if context is not None and (not isinstance(context, list)
                                or not all(isinstance(c, str) for c in context)):
        return f"{label}.context must be a list of strings or null"
    if not isinstance(result.get("metadata"), (dict, type(None))):
        return f"{label}.metadata must be an object or null"
    for field in _AMOUNTS:
        value = result.get(field)
        if value is not None and (not _finite(value) or value < 0):
            return f"{label}.{field} must be a non-negative number or null"
    return json_text(f"{label}.metadata", result.get("metadata"))[1]


def _item(index: int, result: Any) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """One result as stored (every field named, whichever SDK sent it), or why not."""
    label = f"results[{index}]"
    if not isinstance(result, dict):
        return None, f"{label} must be an object"
    scores, reason = _scores(label, result)
    reasoning, why = _reasoning(label, result.get("reasoning"))
    reason = _plain_reason(label, result) or reason or why
    if reason is not None:
        return None, reason
    item = {"input": result["input"], **{field: result.get(field) for field in _TEXTS},
            "context": result.get("context"), "metadata": result.get("metadata"),
            "model": result.get("model") or "production",
            "is_production": result.get("is_production"), "scores": scores,
            "reasoning": reasoning, **{field: result.get(field) for field in _AMOUNTS}}
    return item, None


def _head_reason(body: Mapping[str, Any]) -> Optional[str]:
    """Why the run's own fields cannot be stored, if they cannot."""
    size = body.get("dataset_size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool)
                             or not 0 <= size <= _NUMBER_MAX):
        return "dataset_size must be a non-negative integer or null"
    results = body.get("results")
    if not isinstance(results, list) or not results:
        return "results must be a non-empty list of the items' results"
    return id_reason("name", body.get("name")) \
        or _text_reason("description", body.get("description")) \
        or _text_reason("judge_model", body.get("judge_model"), limit=MAX_ID_CHARS)


def prepare_run(body: Any, max_items: int) -> Tuple[Optional[Run], int, Optional[str]]:
    """The run to store for an upload, or the status and reason to refuse it with."""
    if not isinstance(body, dict):
        return None, 400, "expected {name, description, dataset_size, judge_model, results}"
    reason = _head_reason(body)
    if reason is not None:
        return None, 400, reason
    results: List[Any] = body["results"]
    if len(results) > max_items:
        return None, 413, f"over {max_items} results in one request"
    items = []
    for index, result in enumerate(results):
        item, reason = _item(index, result)
        if item is None:
            return None, 400, reason
        items.append(item)
    size = body.get("dataset_size")
    if size is None:  # as the references count it: distinct (input, system message)
        size = len({(i["input"], i["system_message"] or "") for i in items})
    return Run(body["name"], body.get("description"), body.get("judge_model"), size, items,
               summarise(items)), 200, None


def aggregate(scores: List[float]) -> Dict[str, Any]:
    """A metric's figures over the items it scored, as ``calculate_aggregate_scores``."""
    return {"avg": sum(scores) / len(scores), "min": min(scores), "max": max(scores),
            "count": len(scores)}


def _metric_names(items: List[Dict[str, Any]]) -> List[str]:
    """Every metric of the run: scored or reasoned about on some item; built-ins first."""
    seen: Dict[str, None] = {}
    for item in items:
        seen.update(dict.fromkeys(item["scores"]))
        seen.update(dict.fromkeys(k for k in item["reasoning"] if k != _ITEM_ERROR))
    return [m for m in BUILTIN_METRICS if m in seen] + \
        [m for m in seen if m not in BUILTIN_METRICS]


def summarise(items: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The run's metrics, models, and each metric's figures overall and per model."""
    metrics = _metric_names(items)
    models = list(dict.fromkeys(item["model"] for item in items))
    by_model: Dict[str, Dict[str, List[float]]] = {model: {} for model in models}
    overall: Dict[str, List[float]] = {}
    for item in items:
        for metric, score in item["scores"].items():
            if score is not None:
                overall.setdefault(metric, []).append(score)
                by_model[item["model"]].setdefault(metric, []).append(score)
    return {"metrics": metrics, "models": models,
            "scores": {m: aggregate(overall[m]) for m in metrics if m in overall},
            "by_model": {model: {m: aggregate(found[m]) for m in metrics if m in found}
                         for model, found in by_model.items()}}
