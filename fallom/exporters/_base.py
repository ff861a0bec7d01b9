"""The export pipeline's parts: processors, exporters, their results and counters."""

from __future__ import annotations

import threading
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    List,
    Mapping,
    Optional,
    Protocol,
    Tuple,
    runtime_checkable,
)

from fallom.infra._fork import register

if TYPE_CHECKING:
    from fallom.tracing._span import Span

__all__ = ["DROP_REASONS", "ExportResult", "Exporter", "Record", "SpanProcessor", "Stats"]

Record = Dict[str, Any]

DROP_REASONS = (
    "queue_full", "http_status", "retries_exhausted", "payload_too_large", "shutdown",
    "redacted", "export_error", "spool_full", "rejected", "spool_corrupt",
)


class SpanProcessor:
    """Receives each finished span on the thread that ended it; must be cheap."""

    skips_foreign = False  # True: spans from FallomExporter are not handed to it

    def on_end(self, span: Span) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def force_flush(self, timeout: float) -> bool:
        return True

    def shutdown(self, timeout: float) -> None:
        return None


class ExportResult:
    """What one ``export()`` call did: the built-in exporters say it record by record.

    A plain ``True``/``False`` (what a user's exporter returns) means all sent,
    or all dropped as ``export_error``.
    """

    __slots__ = ("batches", "cut", "dropped", "failed", "retried", "sent", "spooled")
    COUNTS = ("sent", "batches", "retried", "cut", "spooled")  # summed by merge and Stats

    def __init__(self) -> None:
        self.sent = self.batches = self.retried = self.cut = self.spooled = 0
        self.dropped: Dict[str, int] = {}
        # encoded records given up for a passing reason (backend down, out of time),
        # by reason: a spool can keep them instead
        self.failed: List[Tuple[str, List[bytes]]] = []

    def drop(self, reason: str, count: int) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + count

    def give_up(self, reason: str, parts: List[bytes]) -> None:
        """Drop ``parts`` for a passing ``reason``, keeping them for a spool to take."""
        self.drop(reason, len(parts))
        self.failed.append((reason, parts))

    def merge(self, other: ExportResult) -> None:
        for name in self.COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failed += other.failed
        for reason, count in other.dropped.items():
            self.drop(reason, count)

    def failed_count(self, reason: Optional[str] = None) -> int:
        """Records in ``failed`` (for ``reason``, or all of them)."""
        return sum(len(parts) for why, parts in self.failed if reason in (None, why))

    @property
    def ok(self) -> bool:
        """Everything delivered (a spooled record is not delivered yet)."""
        return not self.dropped and not self.spooled

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return f"ExportResult(sent={self.sent}, dropped={self.dropped})"


@runtime_checkable
class Exporter(Protocol):
    """Takes finished records, on a background thread; returns True when delivered
    (or an :class:`ExportResult` saying what happened to each).

    An exporter may also define ``drain_until(deadline)`` (shutdown started:
    retry no later than that ``time.monotonic()`` value), ``interrupt()``
    (out of time: cut any wait short), ``shutdown()`` (called after the final drain) and
    ``after_fork()`` (drop connections inherited from the parent).
    """

    def export(self, records: List[Record]) -> Any: ...


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
        if amount:
            with self._lock:
                self._counts[name] = self._counts.get(name, 0) + amount

    def drop(self, reason: str, amount: int = 1) -> None:
        self.add(f"dropped.{reason}", amount)

    def count(self, result: Any, total: int) -> bool:
        """Count what an exporter said of ``total`` records; True when all were sent."""
        if isinstance(result, ExportResult):
            for name in result.COUNTS:
                self.add(name, getattr(result, name))
            for reason, amount in result.dropped.items():
                self.drop(reason, amount)
            return result.ok
        if result:
            self.add("sent", total)
            self.add("batches")
            return True
        self.drop("export_error", total)
        return False

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()

    def get(self, name: str) -> int:
        return self._counts.get(name, 0)

    def dropped(self) -> int:
        with self._lock:
            return sum(v for k, v in self._counts.items() if k.startswith("dropped."))

    def snapshot(self) -> Dict[str, Any]:
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
