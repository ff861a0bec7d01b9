"""Shared timing helpers: best-of-N per-call cost, median over repeats."""

from __future__ import annotations

import statistics
import time
from typing import Callable, List

__all__ = ["per_call_ns", "report"]


def per_call_ns(func: Callable[[], object], number: int = 50_000, repeat: int = 7) -> float:
    """Median over ``repeat`` runs of the mean cost of one call, in ns."""
    for _ in range(number // 10):  # warm up
        func()
    runs: List[float] = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        for _ in range(number):
            func()
        runs.append((time.perf_counter_ns() - start) / number)
    return statistics.median(runs)


def report(rows: List[tuple]) -> None:
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>10.3f}  {note}")
