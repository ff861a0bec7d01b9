"""Scores across results: per-metric aggregates and regressions between two runs.

The TypeScript SDK's ``calculateAggregateScores`` and ``detectRegression``, on
:class:`EvalResult` lists: the same numbers, the same ``{"detected", "details"}``
answer, so a CI check reads alike in both languages.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, Mapping, Sequence, Tuple, Union

from fallom.evals._chat import as_number
from fallom.evals._types import SCORE_FIELDS, EvalResult

__all__ = ["calculate_aggregate_scores", "detect_regression", "scores_of"]

Aggregates = Dict[str, Dict[str, float]]


def scores_of(result: EvalResult) -> Iterator[Tuple[str, float]]:
    """Each judged metric's score: the built-in fields, then the custom metrics'."""
    custom = [name for name in result.reasoning if name not in SCORE_FIELDS]
    for name in (*SCORE_FIELDS, *custom):
        score = as_number(getattr(result, name, None))
        if score is not None:
            yield name, score


def calculate_aggregate_scores(results: Sequence[EvalResult]) -> Aggregates:
    """Each metric's average, lowest and highest score, and how many items were scored.

    Args:
        results: one run's results (for ``compare_models``, one model's list).

    Returns:
        ``{metric: {"avg", "min", "max", "count"}}`` over the scored items; a metric
        that failed on an item does not count there.

    Raises:
        TypeError: ``results`` is a dict (``compare_models``'s): pass one model's list.
    """
    if isinstance(results, Mapping):
        raise TypeError("calculate_aggregate_scores takes one list of results; for "
                        "compare_models' dict pass one model's: results['model-name']")
    found: Dict[str, list[float]] = {}
    for result in results:
        for name, score in scores_of(result):
            found.setdefault(name, []).append(score)
    return {name: {"avg": sum(s) / len(s), "min": min(s), "max": max(s), "count": len(s)}
            for name, s in found.items()}


def detect_regression(current: Union[Aggregates, Sequence[EvalResult]],
                      previous: Union[Aggregates, Sequence[EvalResult]],
                      threshold: float = 0.1) -> Dict[str, Any]:
    """Whether any metric's average fell by more than ``threshold`` since ``previous``.

    Args:
        current: this run's aggregates (``calculate_aggregate_scores``), or its results.
        previous: the run to compare with, the same way.
        threshold: the largest drop of an average that is not a regression (default 0.1).

    Returns:
        ``{"detected": bool, "details": {metric: {"current", "previous", "delta"}}}``
        for the metrics both runs scored; ``delta`` is current minus previous.
    """
    now, before = _aggregates(current), _aggregates(previous)
    details = {name: {"current": now[name]["avg"], "previous": before[name]["avg"],
                      "delta": now[name]["avg"] - before[name]["avg"]}
               for name in now if name in before}
    return {"detected": any(d["delta"] < -threshold for d in details.values()),
            "details": details}


def _aggregates(given: Union[Aggregates, Sequence[EvalResult]]) -> Aggregates:
    return dict(given) if isinstance(given, Mapping) else calculate_aggregate_scores(given)
