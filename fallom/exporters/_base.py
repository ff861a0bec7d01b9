"""The exporter's side of the pipeline: the interface, its results, how they are counted."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Protocol, Tuple

from fallom.infra._counters import Stats

__all__ = ["BaseExporter", "EncodingExporter", "ExportResult", "Exporter", "Record",
           "as_exporter", "count_result"]

Record = Dict[str, Any]

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
        """Count ``count`` records as dropped for ``reason`` (kept by no spool).

        Args:
            reason: one of ``fallom.exporters.DROP_REASONS``, the reasons
                ``fallom.stats()`` reports.
            count: how many records.
        """
        self.dropped[reason] = self.dropped.get(reason, 0) + count

    def give_up(self, reason: str, parts: List[bytes]) -> None:
        """Drop ``parts`` for a passing ``reason``, keeping them for a spool to take.

        Counted as dropped for ``reason`` unless a spool keeps them.

        Args:
            reason: why they were given up (``http_status``, ``retries_exhausted``,
                ``shutdown``...).
            parts: the encoded records, as they would have been sent.
        """
        self.drop(reason, len(parts))
        self.failed.append((reason, parts))

    def merge(self, other: ExportResult) -> None:
        """Add ``other``'s counts, drops and given-up records to this result.

        Args:
            other: the result of another part of the same export.
        """
        for name in self.COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failed += other.failed
        for reason, count in other.dropped.items():
            self.drop(reason, count)

    def failed_count(self, reason: Optional[str] = None) -> int:
        """How many records were given up and may still be spooled.

        Args:
            reason: count only those given up for it; None: all of them.

        Returns:
            The number of records in :attr:`failed` (for ``reason``).
        """
        return sum(len(parts) for why, parts in self.failed if reason in (None, why))

    @property
    def ok(self) -> bool:
        """Everything delivered (a spooled record is not delivered yet)."""
        return not self.dropped and not self.spooled

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return f"ExportResult(sent={self.sent}, dropped={self.dropped})"


class Exporter(Protocol):
    """Everything the batch processor calls on an exporter, on its background thread.

    ``export`` returns True when the records were delivered, False when not, or an
    :class:`ExportResult` saying what became of each. The hooks: ``drain_until``
    (shutdown started: retry no later than that ``time.monotonic()`` value),
    ``interrupt`` (out of time: cut any wait short), ``shutdown`` (after the final
    drain) and ``after_fork`` (drop connections inherited from the parent);
    ``last_failure`` says why the latest delivery failed, for the exit line.
    """

    last_failure: Optional[str]

    def export(self, records: List[Record]) -> Any:
        """Deliver one batch, on the processor's background thread.

        Args:
            records: the wire records of one batch, at most the processor's batch size.

        Returns:
            True (or truthy) when all were delivered; False when none were (counted as
            dropped ``export_error``); or an :class:`ExportResult` saying what became of
            each. An exception raised is logged, and the batch lost.
        """

    def drain_until(self, deadline: float) -> None:
        """Shutdown started: retry no later than ``deadline``.

        Args:
            deadline: a ``time.monotonic()`` value.
        """

    def interrupt(self) -> None:
        """Out of time: cut any wait or retry in progress short, now."""

    def shutdown(self) -> None:
        """The final drain finished: release connections and threads."""

    def after_fork(self) -> None:
        """In a forked child: drop connections inherited from the parent."""


class BaseExporter:
    """The hooks of :class:`Exporter`, each doing nothing: subclass and write ``export``."""

    last_failure: Optional[str] = None

    def export(self, records: List[Record]) -> Any:  # pragma: no cover - interface
        """Deliver one batch: a subclass writes it, as :meth:`Exporter.export` says.

        Args:
            records: the wire records of one batch.

        Returns:
            True when delivered, False when not, or an :class:`ExportResult`.

        Raises:
            NotImplementedError: here; a subclass replaces it.
        """
        raise NotImplementedError

    def drain_until(self, deadline: float) -> None:
        """Does nothing: an exporter without retries has no wait to bound.

        Args:
            deadline: a ``time.monotonic()`` value by which shutdown must end.
        """
        return None

    def interrupt(self) -> None:
        """Does nothing: override it to cut a wait in progress short."""
        return None

    def shutdown(self) -> None:
        """Does nothing: override it to release connections after the final drain."""
        return None

    def after_fork(self) -> None:
        """Does nothing: override it to drop connections a forked child inherited."""
        return None


class EncodingExporter(BaseExporter):
    """An exporter sent records already encoded, each at most ``max_batch_bytes``.

    The batch processor encodes on its worker, so a record the exporter gives up is
    handed to the spool as the very bytes it would have sent.
    """

    max_batch_bytes: int = 4_000_000

    def export_encoded(self, parts: List[bytes], result: Optional[ExportResult] = None, *,
                       retries: bool = True) -> ExportResult:  # pragma: no cover - interface
        """Deliver ``parts``, adding to ``result``; ``retries=False``: one attempt each."""
        raise NotImplementedError


class _Adapted(BaseExporter):
    """A user's exporter (any object with ``export``) as an :class:`Exporter`: the hooks
    it defines are found once, here, and the ones it lacks do nothing."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self._hooks: Dict[str, Callable[..., Any]] = {
            name: method for name in ("drain_until", "interrupt", "shutdown", "after_fork")
            if callable(method := getattr(target, name, None))}

    @property
    def last_failure(self) -> Optional[str]:  # type: ignore[override]  # read from the target
        failure = getattr(self.target, "last_failure", None)
        return failure if isinstance(failure, str) else None

    def export(self, records: List[Record]) -> Any:
        return self.target.export(records)

    def drain_until(self, deadline: float) -> None:
        self._call("drain_until", deadline)

    def interrupt(self) -> None:
        self._call("interrupt")

    def shutdown(self) -> None:
        self._call("shutdown")

    def after_fork(self) -> None:
        self._call("after_fork")

    def _call(self, hook: str, *args: Any) -> None:
        method = self._hooks.get(hook)
        if method is not None:
            method(*args)


def as_exporter(exporter: Any) -> Exporter:
    """``exporter`` itself when it has every hook, else an adapter giving it the rest."""
    return exporter if isinstance(exporter, BaseExporter) else _Adapted(exporter)


def count_result(stats: Stats, result: Any, total: int) -> bool:
    """Count what an exporter said of ``total`` records; True when all were sent."""
    if isinstance(result, ExportResult):
        for name in result.COUNTS:
            stats.add(name, getattr(result, name))
        for reason, amount in result.dropped.items():
            stats.drop(reason, amount)
        return result.ok
    if result:
        stats.add("sent", total)
        stats.add("batches")
        return True
    stats.drop("export_error", total)
    return False
