"""``evaluate`` and ``compare_models``: 0.2.7's signatures, concurrent and traced.

Each run checks its input before any call (a clear ``ValueError`` or
``TypeError`` naming what is wrong), runs its calls concurrently (``_run``)
inside one root span, prints 0.2.7's summary and uploads as 0.2.7 did. A run
stopped with Ctrl-C uploads nothing unless ``upload="partial"``, says so, and
lets the ``KeyboardInterrupt`` through.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from fallom.evals import _settings
from fallom.evals._datasets import dataset_from_fallom
from fallom.evals._judge import JudgeCall
from fallom.evals._metrics import Metric, resolve_metrics
from fallom.evals._report import Bar, print_comparison, print_failures, print_summary, say
from fallom.evals._run import PRODUCTION, Extras, Plan, Run
from fallom.evals._settings import DEFAULT_JUDGE_MODEL, OPENROUTER_URL, Judge, resolve_judge
from fallom.evals._types import (
    DatasetInput,
    DatasetItem,
    EvalResult,
    Golden,
    LLMTestCase,
    MetricInput,
    Model,
)
from fallom.evals._upload import send
from fallom.infra._guard import report_internal_error
from fallom.tracing._api import span

__all__ = ["compare_models", "evaluate"]

Upload = Union[bool, str]
_NOT_INITIALIZED = ("\n⚠️  Fallom not initialized - results not uploaded. Call evals.init() "
                    "to enable auto-upload.")


@dataclass(frozen=True)
class _Options:
    """How one run is named, reported and uploaded."""

    kind: str  # "evaluate" or "compare_models"
    name: str
    description: Optional[str]
    judge_model: str
    verbose: bool
    upload: Upload  # True, False or "partial"


def evaluate(dataset: Optional[DatasetInput] = None,
             metrics: Optional[List[MetricInput]] = None, judge_model: Optional[str] = None,
             judge_context: Optional[str] = None, name: Optional[str] = None,
             description: Optional[str] = None, verbose: bool = True,
             test_cases: Optional[List[LLMTestCase]] = None, _skip_upload: bool = False, *,
             max_concurrency: int = 8, upload: Upload = True) -> List[EvalResult]:
    """Score outputs with an LLM judge (G-Eval), one judge call per item and metric.

    Args:
        dataset: the items (:class:`DatasetItem`), or the key of a dataset stored in Fallom.
        metrics: built-in metric names and :class:`CustomMetric` s; None: every built-in.
        judge_model: the judge's model; None: ``openai/gpt-4o-mini``.
        judge_context: what the judge should know about your product (so a real feature
            is not marked a hallucination); None: nothing.
        name: the uploaded run's name; None: "Production Eval <date time>".
        description: the uploaded run's description.
        verbose: print a progress bar (on a terminal), the summary and the upload's link.
        test_cases: :class:`LLMTestCase` s instead of ``dataset`` (their expected output
            and context are kept in the results).
        _skip_upload: 0.2.7's internal switch: never upload.
        max_concurrency: judge calls in flight at once (default 8).
        upload: True: upload when ``evals.init`` was called; False: never; "partial": also
            upload the finished results of a run stopped with Ctrl-C.

    Returns:
        One :class:`EvalResult` per item, in the dataset's order; a metric that failed has
        a None score and ``"Error: <reason>"`` as its reasoning.

    Raises:
        ValueError: no dataset, an empty one, an unknown metric (the message names it),
            no judge key, or a bad ``max_concurrency`` or ``upload``.
        TypeError: an item or metric of the wrong type (the message says which).
        KeyboardInterrupt: the run was stopped; it said what was (not) uploaded.
    """
    items, extras = _resolve_items(dataset, test_cases)
    plan = _plan(items, extras, resolve_metrics(metrics), [], judge_model, judge_context,
                 production=True)
    options = _options("evaluate", name, "Production Eval", description, plan, verbose,
                       False if _skip_upload else upload)
    return _execute(plan, options, max_concurrency)[PRODUCTION]


def compare_models(dataset: DatasetInput, models: List[Union[str, Model]],
                   metrics: Optional[List[MetricInput]] = None,
                   judge_model: Optional[str] = None, judge_context: Optional[str] = None,
                   include_production: bool = True,
                   model_kwargs: Optional[Dict[str, Any]] = None, name: Optional[str] = None,
                   description: Optional[str] = None, verbose: bool = True, *,
                   max_concurrency: int = 8, upload: Upload = True) -> Dict[str, List[EvalResult]]:
    """Run several models on the same inputs and score every output with the judge.

    Args:
        dataset: the items (their outputs are the "production" ones), or a dataset key.
        models: model names (called at the judge's OpenAI-compatible endpoint: OpenRouter
            by default) or :class:`Model` s (``create_openai_model`` ...).
        metrics: built-in metric names and :class:`CustomMetric` s; None: every built-in.
        judge_model: the judge's model; None: ``openai/gpt-4o-mini``.
        judge_context: what the judge should know about your product; None: nothing.
        include_production: also score the dataset's own outputs, as "production".
        model_kwargs: extra request fields for models given by name (``temperature``...).
        name: the uploaded run's name; None: "Model Comparison <date time>".
        description: the uploaded run's description.
        verbose: print a progress bar (on a terminal), the table and the upload's link.
        max_concurrency: model and judge calls in flight at once (default 8).
        upload: True: upload when ``evals.init`` was called; False: never; "partial": also
            upload the finished results of a run stopped with Ctrl-C.

    Returns:
        The results of each model (and "production"), each list in the dataset's order; a
        model call that failed gives ``output="Error: <reason>"`` and no scores.

    Raises:
        ValueError: an empty dataset, an unknown metric, two models of one name, no judge
            key, or a bad ``max_concurrency`` or ``upload``.
        TypeError: an item, model or metric of the wrong type (the message says which).
        KeyboardInterrupt: the run was stopped; it said what was (not) uploaded.
    """
    items, extras = _resolve_items(dataset, None)
    if model_kwargs is not None and not isinstance(model_kwargs, Mapping):
        raise TypeError(f"model_kwargs must be a dict, got {type(model_kwargs).__name__}")
    chosen = _models(models, include_production)
    plan = _plan(items, extras, resolve_metrics(metrics), chosen, judge_model, judge_context,
                 production=include_production, model_kwargs=model_kwargs or {})
    options = _options("compare_models", name, "Model Comparison", description, plan,
                       verbose, upload)
    return _execute(plan, options, max_concurrency)


# -- checking the input ----------------------------------------------------------------
def _resolve_items(dataset: Optional[DatasetInput],
                   test_cases: Optional[Sequence[LLMTestCase]]
                   ) -> Tuple[List[DatasetItem], List[Extras]]:
    """The items and their test cases' extras, checked: each has an input and an output."""
    if test_cases is not None:
        given: Sequence[Any] = test_cases
        where = "test_cases"
    elif isinstance(dataset, str):
        given, where = dataset_from_fallom(dataset), f"dataset {dataset!r}"
    elif dataset is not None:
        given, where = dataset, "dataset"
    else:
        raise ValueError("Either 'dataset' or 'test_cases' must be provided")
    if isinstance(given, (str, bytes, Mapping)) or not hasattr(given, "__iter__"):
        raise TypeError(f"{where} must be a list of items, got {type(given).__name__}")
    pairs = [_item(entry, where, index) for index, entry in enumerate(given)]
    if not pairs:
        raise ValueError(f"{where} is empty: there is nothing to evaluate")
    return [item for item, _ in pairs], [extra for _, extra in pairs]


def _item(entry: Any, where: str, index: int) -> Tuple[DatasetItem, Extras]:
    if isinstance(entry, LLMTestCase):
        item = DatasetItem(entry.input, entry.actual_output, entry.system_message,
                           entry.metadata)
        extras: Extras = (entry.expected_output, entry.context)
    elif isinstance(entry, DatasetItem):
        item, extras = entry, (None, None)
    elif isinstance(entry, Golden):
        raise TypeError(f"{where}[{index}] is a Golden, which has no output yet: run your "
                        "pipeline on it first (EvaluationDataset.generate_test_cases)")
    else:
        raise TypeError(f"{where}[{index}] must be a DatasetItem or an LLMTestCase, got "
                        f"{type(entry).__name__}")
    for field_name in ("input", "output"):
        value = getattr(item, field_name)
        if not isinstance(value, str):
            shown = "actual_output" if isinstance(entry, LLMTestCase) and \
                field_name == "output" else field_name
            raise TypeError(f"{where}[{index}].{shown} must be text, got "
                            f"{type(value).__name__}")
    return item, extras


def _models(models: Sequence[Union[str, Model]], include_production: bool) -> List[Model]:
    if isinstance(models, (str, Model)):
        raise TypeError("models must be a list of model names or Models, got one: write "
                        f"models=[{models!r}]")
    chosen = []
    for index, given in enumerate(models):
        if isinstance(given, str) and given:
            chosen.append(Model(name=given))
        elif isinstance(given, Model) and isinstance(given.name, str) and given.name:
            chosen.append(given)
        else:
            raise TypeError(f"models[{index}] must be a model name or a Model with a name, "
                            f"got {given!r}")
    names = [model.name for model in chosen] + ([PRODUCTION] if include_production else [])
    for model_name in names:
        if names.count(model_name) > 1:
            raise ValueError(f"two result groups would be named {model_name!r}: give each "
                             "model its own name (\"production\" is the dataset's outputs)")
    if not chosen and not include_production:
        raise ValueError("nothing to compare: no models, and include_production=False")
    return chosen


def _plan(items: List[DatasetItem], extras: List[Extras], metrics: List[Metric],
          models: List[Model], judge_model: Optional[str], judge_context: Optional[str],
          production: bool, model_kwargs: Optional[Mapping[str, Any]] = None) -> Plan:
    """The run's plan; the judge's endpoint is resolved only when a call needs it."""
    needs_endpoint = bool(metrics) or any(model.call_fn is None for model in models)
    endpoint = resolve_judge() if needs_endpoint \
        else Judge(OPENROUTER_URL, None, _settings.config().judge_timeout)
    judge = JudgeCall(endpoint, judge_model or DEFAULT_JUDGE_MODEL, judge_context,
                      threading.Event())
    return Plan(items, extras, metrics, judge, production, models, model_kwargs or {})


def _options(kind: str, name: Optional[str], default_name: str, description: Optional[str],
             plan: Plan, verbose: bool, upload: Upload) -> _Options:
    if upload not in (True, False, "partial"):
        raise ValueError(f"upload must be True, False or \"partial\", got {upload!r}")
    return _Options(kind, name or f"{default_name} {time.strftime('%Y-%m-%d %H:%M')}",
                    description, plan.judge.model, verbose, upload)


def _check_concurrency(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_concurrency must be a whole number of at least 1, got {value!r}")
    return value


# -- running -----------------------------------------------------------------------------
def _execute(plan: Plan, options: _Options, max_concurrency: int
             ) -> Dict[str, List[EvalResult]]:
    """Run the plan inside the run's root span, print, upload; KeyboardInterrupt passes."""
    concurrency = _check_concurrency(max_concurrency)
    attributes = {"eval.run_name": options.name, "eval.items": len(plan.items),
                  "eval.metrics": [m.name for m in plan.metrics],
                  "eval.judge_model": plan.judge.model}
    with span(f"evals.{options.kind}", attributes=attributes) as root:
        bar = Bar(options.verbose, plan.results,
                  "Evaluating" if options.kind == "evaluate" else "Comparing")
        run = Run(plan, concurrency, bar)
        try:
            run.execute()
        except KeyboardInterrupt:
            bar.close()
            _interrupted(run, options)
            raise
        bar.close()
        for bug in run.crashed():
            report_internal_error(bug, "evals run")
        groups = run.finished()
        if options.verbose:
            _print_results(groups, plan.metrics, options)
            print_failures(run.failures, plan.calls)
        run_id = _upload(groups, options)
        if run_id is not None:
            root.set_attribute("eval.run_id", run_id)
    return groups


def _print_results(groups: Dict[str, List[EvalResult]], metrics: List[Metric],
                   options: _Options) -> None:
    if options.kind == "evaluate":
        print_summary(groups[PRODUCTION], metrics)
    else:
        print_comparison(groups, metrics)


def _upload_target(groups: Dict[str, List[EvalResult]],
                   options: _Options) -> Union[List[EvalResult], Dict[str, List[EvalResult]]]:
    return groups[PRODUCTION] if options.kind == "evaluate" else groups


def _upload(groups: Dict[str, List[EvalResult]], options: _Options) -> Optional[str]:
    """Upload as 0.2.7 did: when ``init`` was called, else say why not (``verbose``)."""
    if options.upload is False:
        return None
    if not _settings.config().initialized:
        if options.verbose:
            say(_NOT_INITIALIZED)
        return None
    return send(_upload_target(groups, options), options.name, options.description,
                options.judge_model, options.verbose)[0]


def _interrupted(run: Run, options: _Options) -> None:
    """Say what an interrupted run leaves: nothing uploaded, or its finished results."""
    groups = run.finished()
    done = sum(len(results) for results in groups.values())
    head = f"\n⚠️  Evaluation interrupted: {done} of {run.plan.results} results finished"
    if options.upload != "partial":
        tail = "; nothing was uploaded" if options.upload else ""
        hint = " (pass upload=\"partial\" to upload the finished ones)" if options.upload \
            else ""
        say(f"{head}{tail}{hint}.", error=True)
        return
    if not _settings.config().initialized or done == 0:
        why = "evals.init() was not called" if done else "none finished"
        say(f"{head}; nothing was uploaded: {why}.", error=True)
        return
    say(f"{head}; uploading those (upload=\"partial\").", error=True)
    partial = _Options(options.kind, f"{options.name} (partial)", options.description,
                       options.judge_model, True, True)
    send(_upload_target(groups, partial), partial.name, partial.description,
         partial.judge_model, True)
