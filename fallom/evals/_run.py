"""One run's calls, made concurrently and put back in dataset order.

Every judge call and model call is a job for a small pool of daemon threads
(``max_concurrency``, default 8); judge calls go before model calls, so items
finish in order and an interrupted run has whole items to show. Each result has
a slot in dataset order, filled whatever order the answers come in. A failing
call fails its metric (or its item, for a model), never the run. The workers
run in a copy of the caller's context, so every call's span nests under the
run's root span, in one trace.
"""

from __future__ import annotations

import contextvars
import itertools
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from fallom.evals._http import RequestFailed, close_thread_sessions
from fallom.evals._judge import JudgeCall, VerdictError
from fallom.evals._metrics import Metric
from fallom.evals._models import ModelCallError, generate, messages_for
from fallom.evals._report import Bar, Failure
from fallom.evals._types import DatasetItem, EvalResult, Model

__all__ = ["PRODUCTION", "Extras", "Plan", "Run"]

PRODUCTION = "production"  # the results' key for the dataset's own outputs, as in 0.2.7
_JUDGE, _MODEL, _LAST = 0, 1, 2  # job priorities: judge calls first, sentinels last
Extras = Tuple[Optional[str], Optional[List[str]]]  # a test case's expected output, context
Job = Callable[[], None]


@dataclass
class Plan:
    """What a run evaluates: items, metrics, models, and how the judge is reached."""

    items: List[DatasetItem]
    extras: List[Extras]
    metrics: List[Metric]
    judge: JudgeCall
    production: bool = True
    models: List[Model] = field(default_factory=list)
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def calls(self) -> int:
        """Judge and model calls in all."""
        per_item = (len(self.metrics) if self.production else 0) \
            + len(self.models) * (1 + len(self.metrics))
        return len(self.items) * per_item

    @property
    def results(self) -> int:
        """Results in all: one per item for production and for each model."""
        return len(self.items) * (int(self.production) + len(self.models))


class _Slot:
    """One result in the making: its item, and how many calls it still waits on."""

    __slots__ = ("index", "item", "remaining", "result")

    def __init__(self, index: int, item: DatasetItem, remaining: int,
                 result: Optional[EvalResult] = None) -> None:
        self.index, self.item, self.remaining, self.result = index, item, remaining, result


class _Workers:
    """Daemon threads taking prioritised jobs until told to stop.

    Daemon threads, so an interrupted run does not keep the program alive until
    an in-flight request times out; each closes its connections when it stops.
    """

    def __init__(self, size: int, cancel: threading.Event) -> None:
        self._size = size
        self._queue: queue.PriorityQueue[Tuple[int, int, Optional[Job]]] = \
            queue.PriorityQueue()
        self._order = itertools.count()
        self._pending = 0
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self.cancel = cancel
        self.crashed: List[BaseException] = []  # fallom bugs, reported by the caller

    def submit(self, priority: int, job: Job) -> None:
        with self._lock:
            self._pending += 1
            self._idle.clear()
        self._queue.put((priority, next(self._order), job))

    def run(self) -> None:
        """Work through every job, including those jobs add; KeyboardInterrupt stops it."""
        with self._lock:
            if self._pending == 0:
                return
        context = contextvars.copy_context()
        for number in range(self._size):
            threading.Thread(target=context.copy().run, args=(self._work,), daemon=True,
                             name=f"fallom-evals-{number}").start()
        try:
            while not self._idle.wait(0.5):  # a timed wait: Ctrl-C reaches us everywhere
                pass
        finally:
            if not self._idle.is_set():
                self.cancel.set()
            for _ in range(self._size):
                self._queue.put((_LAST, next(self._order), None))

    def _work(self) -> None:
        try:
            while True:
                job = self._queue.get()[2]
                if job is None:
                    return
                try:
                    if not self.cancel.is_set():
                        job()
                except BaseException as exc:  # a bug in fallom: said after the run
                    self.crashed.append(exc)
                finally:
                    self._finish_one()
        finally:
            close_thread_sessions()

    def _finish_one(self) -> None:
        with self._lock:
            self._pending -= 1
            if self._pending == 0:
                self._idle.set()


class Run:
    """One run of a plan: its slots, its workers, its failures."""

    def __init__(self, plan: Plan, max_concurrency: int, bar: Bar) -> None:
        self.plan = plan
        self.failures: List[Failure] = []
        self._bar = bar
        self._lock = threading.Lock()
        self._workers = _Workers(max(1, min(max_concurrency, plan.calls)), plan.judge.cancel)
        self.groups: Dict[str, List[_Slot]] = {}
        judged = len(plan.metrics)
        if plan.production:
            self.groups[PRODUCTION] = [_Slot(i, item, judged, self._production(i, item))
                                       for i, item in enumerate(plan.items)]
        for model in plan.models:
            self.groups[model.name] = [_Slot(i, item, 1 + judged)
                                       for i, item in enumerate(plan.items)]

    def execute(self) -> None:
        """Make every call; returns when all are answered.

        Raises:
            KeyboardInterrupt: the user stopped the run; calls in flight are abandoned.
        """
        for slot in self.groups.get(PRODUCTION, []):
            self._judge_all(slot)
        for model in self.plan.models:
            for slot in self.groups[model.name]:
                self._workers.submit(_MODEL, self._model_job(model, slot))
        self._workers.run()

    def crashed(self) -> List[BaseException]:
        return self._workers.crashed

    def finished(self) -> Dict[str, List[EvalResult]]:
        """Each group's finished results, in dataset order (all of them after a whole run)."""
        return {name: [s.result for s in slots if s.remaining == 0 and s.result is not None]
                for name, slots in self.groups.items()}

    def _production(self, index: int, item: DatasetItem) -> EvalResult:
        expected, context = self.plan.extras[index]
        return EvalResult(input=item.input, output=item.output,
                          system_message=item.system_message, expected_output=expected,
                          context=context, metadata=item.metadata, model=PRODUCTION,
                          is_production=True, reasoning={})

    def _judge_all(self, slot: _Slot) -> None:
        if not self.plan.metrics:
            self._done(slot, 0)
        for metric in self.plan.metrics:
            self._workers.submit(_JUDGE, self._judge_job(slot, metric))

    def _judge_job(self, slot: _Slot, metric: Metric) -> Job:
        def job() -> None:
            result = slot.result
            assert result is not None
            try:
                verdict = self.plan.judge.score(metric, result.input, result.output,
                                                result.system_message)
                setattr(result, metric.name, verdict.score)
                result.reasoning[metric.name] = verdict.reasoning
            except (RequestFailed, VerdictError) as exc:
                self._failed(result, metric.name, str(exc))
            except Exception as exc:  # a bug in fallom: the metric fails, the bug is said later
                self._crashed(exc)
                self._failed(result, metric.name, f"fallom internal error: {type(exc).__name__}")
            finally:
                self._done(slot, 1)
        return job

    def _model_job(self, model: Model, slot: _Slot) -> Job:
        def job() -> None:
            item = slot.item
            try:
                made = generate(model, messages_for(item.system_message, item.input),
                                self.plan.judge.endpoint, self.plan.model_kwargs)
            except ModelCallError as exc:
                self._no_output(model, slot, str(exc))
                return
            except Exception as exc:  # a bug in fallom: the item fails, the bug is said later
                self._crashed(exc)
                self._no_output(model, slot, f"fallom internal error: {type(exc).__name__}")
                return
            slot.result = EvalResult(
                input=item.input, output=made.content, system_message=item.system_message,
                metadata=item.metadata, model=model.name, is_production=False, reasoning={},
                latency_ms=made.latency_ms, tokens_in=made.usage.tokens_in,
                tokens_out=made.usage.tokens_out, cost=made.usage.cost)
            self._judge_all(slot)
            self._done(slot, 1)
        return job

    def _no_output(self, model: Model, slot: _Slot, reason: str) -> None:
        """0.2.7's result of a failed model call: the error as output, no scores."""
        item = slot.item
        slot.result = EvalResult(input=item.input, output=f"Error: {reason}",
                                 system_message=item.system_message, model=model.name,
                                 is_production=False, reasoning={"error": reason})
        self.failures.append(Failure(model.name, "output", reason))
        self._done(slot, slot.remaining)

    def _crashed(self, exc: BaseException) -> None:
        self._workers.crashed.append(exc)

    def _failed(self, result: EvalResult, metric: str, reason: str) -> None:
        setattr(result, metric, None)
        result.reasoning[metric] = f"Error: {reason}"
        self.failures.append(Failure(result.model, metric, reason))

    def _done(self, slot: _Slot, calls: int) -> None:
        """``calls`` of the slot's calls are answered; the bar moves when none is left."""
        with self._lock:
            slot.remaining -= calls
            finished = slot.remaining == 0
        if finished:
            self._in_metric_order(slot.result)
            self._bar.advance()

    def _in_metric_order(self, result: Optional[EvalResult]) -> None:
        """The reasoning in the order of the metrics (answers come in any order), as 0.2.7."""
        if result is not None:
            reasoning = result.reasoning
            order = [m.name for m in self.plan.metrics if m.name in reasoning]
            result.reasoning = {**{name: reasoning[name] for name in order}, **reasoning}
