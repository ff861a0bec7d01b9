"""Which metrics a run asks the judge for: built-in names and custom metrics, checked.

A mistake is refused before any call is made, with a message that names the
metric and what is wrong with it (and the nearest built-in name, for a typo).
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import List, NamedTuple, Optional, Sequence, Tuple

from fallom.evals._prompts import METRIC_PROMPTS
from fallom.evals._types import (
    AVAILABLE_METRICS,
    SCORE_FIELDS,
    CustomMetric,
    EvalResult,
    MetricInput,
)

__all__ = ["Metric", "custom_metric", "resolve_metrics"]

# EvalResult's fields that are not scores, and reasoning's key for a failed model call:
# a custom metric named so would overwrite them.
_RESERVED = frozenset(f.name for f in dataclasses.fields(EvalResult)
                      if f.name not in SCORE_FIELDS) | {"error"}


class Metric(NamedTuple):
    """One metric as the judge gets it."""

    name: str
    criteria: str
    steps: Tuple[str, ...]


def custom_metric(name: str, criteria: str, steps: List[str]) -> CustomMetric:
    """Define a metric of your own, judged with G-Eval like the built-in ones.

    Args:
        name: its identifier (``"brand_alignment"``): the key of its score and reasoning.
        criteria: what it evaluates, one sentence the judge reads first.
        steps: the evaluation steps the judge follows, in order.

    Returns:
        A :class:`CustomMetric` to put in ``metrics=``.
    """
    return CustomMetric(name=name, criteria=criteria, steps=steps)


def resolve_metrics(metrics: Optional[Sequence[MetricInput]]) -> List[Metric]:
    """The metrics of a run, checked; None: every built-in metric.

    Raises:
        ValueError: an unknown name (0.2.7's message, with the nearest name), a custom
            metric without a name, criteria or steps, one named like a result field, or
            a name given twice.
        TypeError: ``metrics`` is a string, or holds something that is not a metric.
    """
    if metrics is None:
        return [_builtin(name) for name in AVAILABLE_METRICS]
    if isinstance(metrics, str):
        raise TypeError(f"metrics must be a list of metric names, got the string {metrics!r}: "
                        f"write metrics=[{metrics!r}]")
    resolved = [_one(metric, index) for index, metric in enumerate(metrics)]
    names = [metric.name for metric in resolved]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"metric {twice[0]!r} is asked for twice; each metric once")
    return resolved


def _one(metric: object, index: int) -> Metric:
    if isinstance(metric, CustomMetric):
        return _custom(metric)
    if not isinstance(metric, str):
        raise TypeError(f"metrics[{index}] must be a metric name or a CustomMetric, got "
                        f"{type(metric).__name__}")
    if metric not in METRIC_PROMPTS:
        close = difflib.get_close_matches(metric, AVAILABLE_METRICS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"Invalid metric: {metric}. Available: {AVAILABLE_METRICS}. Or use "
                         f"CustomMetric for custom metrics.{hint}")
    return _builtin(metric)


def _builtin(name: str) -> Metric:
    prompt = METRIC_PROMPTS[name]
    return Metric(name, prompt["criteria"], tuple(prompt["steps"]))


def _custom(metric: CustomMetric) -> Metric:
    name = metric.name
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a CustomMetric needs a non-empty name, got {name!r}")
    if name in _RESERVED:
        raise ValueError(f"CustomMetric {name!r} is named like a field of EvalResult; "
                         "choose another name")
    if not isinstance(metric.criteria, str) or not metric.criteria.strip():
        raise ValueError(f"CustomMetric {name!r} needs its criteria (a non-empty string)")
    steps = metric.steps
    if isinstance(steps, str) or not steps or not all(isinstance(s, str) for s in steps):
        raise ValueError(f"CustomMetric {name!r} needs its steps: a non-empty list of strings")
    return Metric(name, metric.criteria, tuple(steps))
