"""Thread-safe counters of what was delivered, retried and dropped, by reason.

The exporters, the A/B report client and the OpenTelemetry bridge each keep
some; ``fallom.stats()`` merges them. Counting is all this module knows.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, List, Mapping

from fallom.infra._fork import register

__all__ = ["DROP_REASONS", "Stats", "merge_stats"]

DROP_REASONS = (
    "queue_full", "http_status", "retries_exhausted", "payload_too_large", "shutdown",
    "redacted", "export_error", "spool_full", "rejected", "spool_corrupt",
)


class Stats:
    """Counters of what was sent, retried and dropped (by reason); thread-safe."""

    __slots__ = ("__weakref__", "_counts", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Dict[str, int] = {}
        register(self)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def add(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to the counter ``name``.

        Args:
            name: the counter: ``sent``, ``retried``, ``batches``, ``cut``, ``spooled``,
                ``replayed``, or ``dropped.<reason>``; others are kept but not in
                :meth:`snapshot`.
            amount: what to add (default 1); 0 changes nothing.
        """
        if amount:
            with self._lock:
                self._counts[name] = self._counts.get(name, 0) + amount

    def drop(self, reason: str, amount: int = 1) -> None:
        """Count ``amount`` records as dropped for ``reason``.

        Args:
            reason: one of :data:`DROP_REASONS`; another is kept but not in
                :meth:`snapshot`.
            amount: how many records (default 1).
        """
        self.add(f"dropped.{reason}", amount)

    def clear(self) -> None:
        """Set every counter back to zero."""
        with self._lock:
            self._counts.clear()

    def get(self, name: str) -> int:
        """One counter's value.

        Args:
            name: the counter, as :meth:`add` names it (``dropped.shutdown`` for a drop).

        Returns:
            Its value; 0 for a counter never added to.
        """
        return self._counts.get(name, 0)

    def dropped(self) -> int:
        """Records dropped so far, whatever the reason.

        Returns:
            The sum of every ``dropped.<reason>`` counter.
        """
        with self._lock:
            return sum(v for k, v in self._counts.items() if k.startswith("dropped."))

    def snapshot(self) -> Dict[str, Any]:
        """The counters as :func:`fallom.stats` reports them, read at once.

        Returns:
            A new dict: ``sent``, ``retried``, ``batches``, ``cut``, ``spooled``,
            ``replayed``, and ``dropped`` (a dict with every reason of
            :data:`DROP_REASONS`, 0 where none was dropped).
        """
        with self._lock:
            counts = dict(self._counts)
        dropped = {r: counts.pop(f"dropped.{r}", 0) for r in DROP_REASONS}
        return {
            "sent": counts.get("sent", 0),
            "retried": counts.get("retried", 0),
            "batches": counts.get("batches", 0),
            "cut": counts.get("cut", 0),
            "spooled": counts.get("spooled", 0),
            "replayed": counts.get("replayed", 0),
            "dropped": dropped,
        }


def merge_stats(parts: List[Mapping[str, Any]]) -> Dict[str, Any]:
    """Sum the snapshots of several processors into one."""
    total: Dict[str, Any] = Stats().snapshot()
    for part in parts:
        for key in ("sent", "retried", "batches", "cut", "spooled", "replayed"):
            total[key] += part.get(key, 0)
        for reason, count in part.get("dropped", {}).items():
            total["dropped"][reason] = total["dropped"].get(reason, 0) + count
    return total
