"""Shared timing helpers: best-of-N per-call cost, median over repeats."""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import time
from typing import Callable, Iterator, List

__all__ = ["fallom_serve", "per_call_ns", "report"]


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


@contextlib.contextmanager
def fallom_serve(db: str, *args: str) -> Iterator[str]:
    """A real ``fallom serve`` subprocess on ``db``: its URL, and stopped on exit."""
    proc = subprocess.Popen([sys.executable, "-m", "fallom", "serve", "--port", "0", "--db", db,
                             *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        yield next(line for line in proc.stdout if "FALLOM_TRACES_URL" in line
                   ).strip().split("=", 1)[1]
    finally:
        proc.terminate()
        proc.wait(10)
