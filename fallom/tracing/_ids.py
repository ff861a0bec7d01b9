"""Trace and span ids, and the clocks; both swappable for deterministic tests.

Ids come from a generator of fallom's own, seeded from ``os.urandom``: a
program's ``random.seed(42)`` cannot make two runs repeat ids, and a forked
child is reseeded so it never repeats its parent's.
"""

from __future__ import annotations

import functools
import os
import random
import time
from typing import Callable

__all__ = ["clock", "ids", "reset"]

_random = random.Random(os.urandom(32))


class _Ids:
    """Random 128-bit trace ids and 64-bit span ids (never zero)."""

    __slots__ = ("span_id", "trace_id")

    def __init__(self) -> None:
        # A zero id (invalid) has a 2**-64 chance; not worth a Python frame per span.
        self.trace_id: Callable[[], int] = functools.partial(_random.getrandbits, 128)
        self.span_id: Callable[[], int] = functools.partial(_random.getrandbits, 64)


class _Clock:
    """Wall clock for timestamps, monotonic clock for durations (both ns)."""

    __slots__ = ("monotonic_ns", "wall_ns")

    def __init__(self) -> None:
        self.wall_ns: Callable[[], int] = time.time_ns
        self.monotonic_ns: Callable[[], int] = time.perf_counter_ns


ids = _Ids()
clock = _Clock()


def reset() -> None:
    """Back to random ids and the real clocks."""
    ids.__init__()  # type: ignore[misc]
    clock.__init__()  # type: ignore[misc]


def _reseed() -> None:
    _random.seed(os.urandom(32))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)
