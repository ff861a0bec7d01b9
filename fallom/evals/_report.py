"""What a run prints: a progress bar on a terminal, 0.2.7's summaries, what failed.

The summaries are 0.2.7's lines, so whatever read its output still reads ours.
The per-item lines 0.2.7 printed are a ``rich`` progress bar instead, and only
on a terminal: a log or a CI job gets the summary alone.
"""

from __future__ import annotations

import collections
import sys
from typing import TYPE_CHECKING, Dict, List, NamedTuple, Optional, Sequence

from fallom.evals._metrics import Metric
from fallom.evals._types import EvalResult

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["Bar", "Failure", "print_comparison", "print_failures", "print_summary", "say"]

_REASONS_SHOWN = 5


def say(text: str, error: bool = False) -> None:
    """Write a line of the evals' report: their output, on stdout as 0.2.7 printed it (a
    diagnostic of fallom itself goes to the ``fallom`` logger instead).

    Args:
        text: the line (or lines).
        error: write to stderr (what an interrupted run left undone).
    """
    stream = sys.stderr if error else sys.stdout
    stream.write(text + "\n")
    stream.flush()


class Failure(NamedTuple):
    """One metric (or model call) that failed: on which result, and why."""

    model: str
    metric: str
    reason: str


class Bar:
    """A progress bar of results done, shown only when ``verbose`` and on a terminal."""

    def __init__(self, verbose: bool, total: int, label: str) -> None:
        self._progress: Optional[Progress] = None
        self._task: Optional[TaskID] = None
        if verbose:
            self._start(total, label)

    def _start(self, total: int, label: str) -> None:
        # rich is imported here, by a verbose run: not by every program importing fallom
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = Console()
        if console.is_terminal and not console.is_dumb_terminal:
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TimeElapsedColumn(),
                                      TimeRemainingColumn(), console=console)
            self._task = self._progress.add_task(label, total=total)
            self._progress.start()

    def advance(self) -> None:
        """One more result is done (safe from any thread)."""
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)

    def close(self) -> None:
        """Stop redrawing; the bar stays as it was last drawn."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _average(results: Sequence[EvalResult], name: str) -> Optional[float]:
    scores = [s for s in (getattr(r, name, None) for r in results) if s is not None]
    return sum(scores) / len(scores) if scores else None


def print_summary(results: Sequence[EvalResult], metrics: Sequence[Metric]) -> None:
    """0.2.7's evaluation summary: each metric's average over the items it scored."""
    say("\n" + "=" * 50 + "\nEVALUATION SUMMARY\n" + "=" * 50)
    for metric in metrics:
        average = _average(results, metric.name)
        if average is not None:
            say(f"{metric.name}: {average:.1%} avg")


def print_comparison(results: Dict[str, List[EvalResult]], metrics: Sequence[Metric]) -> None:
    """0.2.7's comparison table: one row per model, one column per metric."""
    say("\n" + "=" * 70 + "\nMODEL COMPARISON SUMMARY\n" + "=" * 70)
    say(f"{'Model':<30}" + "".join(f"{m.name[:12]:<15}" for m in metrics))
    say("-" * 70)
    for model, rows in results.items():
        cells = [_average(rows, m.name) for m in metrics]
        say(f"{model:<30}" + "".join(f"{'N/A':<15}" if c is None else f"{c:.1%}{'':>9}"
                                       for c in cells))


def print_failures(failures: Sequence[Failure], calls: int) -> None:
    """How many calls failed and the commonest reasons (each result's reasoning has its own)."""
    if not failures:
        return
    counted = collections.Counter(f"{f.metric} ({f.model}): {f.reason}" for f in failures)
    say(f"\n⚠️  {len(failures)} of {calls} calls failed; the reasoning of each says why. "
          "Most common:")
    for reason, count in counted.most_common(_REASONS_SHOWN):
        say(f"  {count} × {reason}")
