"""What the batch processor does with what it cannot send now: drop it, or spool it.

The batch processor hands every such span or record to one of these stages and
never asks which: :class:`Drop` counts each by reason and lets it go;
:class:`SpoolStage` writes it to disk on a thread of its own (``Spooler``) and
replays it, oldest first, while the backend takes it (docs/design.md §5).
"""

from __future__ import annotations

import time
from typing import Any, Callable, List, Optional

from fallom.exporters._base import EncodingExporter, ExportResult
from fallom.exporters._spool import Spool
from fallom.exporters._spooler import Encode, Spooler
from fallom.infra._counters import Stats
from fallom.infra._fork import register
from fallom.infra._guard import logger

__all__ = ["Drop", "SpoolStage"]


class Drop:
    """No spool: what cannot be sent now is dropped, and each drop is counted."""

    def __init__(self, counters: Stats) -> None:
        self.counters = counters

    @property
    def directory(self) -> Optional[str]:
        """Where spans wait for the next run: nowhere."""
        return None

    def take(self, span: Any) -> bool:
        """A span the full queue cannot hold: False, the caller counts it as lost."""
        return False

    def after_export(self, result: Any) -> None:
        """What the exporter gave up stays dropped (``result`` counts it)."""

    def replay(self) -> None:
        """Nothing is kept, so nothing is sent again."""

    def take_all(self, spans: List[Any]) -> int:
        """Shutdown ran out of time with ``spans`` still queued: all lost."""
        self.counters.drop("shutdown", len(spans))
        return len(spans)

    def pending(self) -> bool:
        return False

    def grace(self, timeout: float) -> float:
        """Seconds of a shutdown kept for handing what fails to this stage: none."""
        return 0.0

    def sync(self, timeout: float) -> bool:
        return True

    def close(self, timeout: float) -> int:
        """Spans still held for the next run: none."""
        return 0


class SpoolStage(Drop):
    """Overflow and given-up records go to disk; the export worker replays them."""

    def __init__(self, spool: Spool, exporter: EncodingExporter, encode: Encode,
                 counters: Stats, *, memory_limit: int, batch_size: int,
                 undelivered: Callable[[int], None]) -> None:
        super().__init__(counters)
        self.exporter = exporter
        self.batch_size = batch_size
        self.spooler = Spooler(spool, encode, counters, memory_limit, undelivered)
        register(self)
        self._after_fork()

    def _after_fork(self) -> None:
        self._replay_at = 0.0
        self._replay_backoff = 1.0

    @property
    def directory(self) -> Optional[str]:
        return self.spooler.directory

    def take(self, span: Any) -> bool:
        return self.spooler.take(span)

    def after_export(self, result: Any) -> None:
        """Records given up for a passing reason are spooled instead of dropped."""
        if not isinstance(result, ExportResult):
            return
        if result.failed:
            self._keep_failed(result)
        if result.sent:
            self._replay_at = 0.0  # the backend answers: what the spool holds can go now

    def _keep_failed(self, result: ExportResult) -> None:
        for reason, parts in result.failed:
            result.dropped[reason] -= len(parts)
            if not result.dropped[reason]:
                del result.dropped[reason]
            self.spooler.keep(reason, parts)  # counted as spooled (or dropped) once written
        result.failed = []

    def replay(self) -> None:
        """Send what the spool holds, oldest first, while the backend takes it."""
        if time.monotonic() < self._replay_at or not self.spooler.pending():
            return

        def send(parts: List[bytes]) -> bool:
            result = self.exporter.export_encoded(parts, retries=False)
            if result.failed and not result.sent:
                return False  # the whole chunk stays on disk for the next try: count nothing
            self.counters.add("replayed", result.sent)
            self._keep_failed(result)  # part went: the rest waits in the spool again
            for reason, count in result.dropped.items():  # refused for good: not retried
                self.counters.drop(reason, count)
            return True

        # the next try waits, unless this one finishes (an error in it too)
        self._replay_at = time.monotonic() + self._replay_backoff
        self._replay_backoff = min(self._replay_backoff * 2, 5.0)
        replayed = self.spooler.replay(send, self.batch_size)
        self.counters.drop("spool_corrupt", replayed.corrupt)
        if replayed.done:
            self._replay_at, self._replay_backoff = 0.0, 1.0
        if replayed.sent:
            logger.debug("fallom: replayed %d spans from the spool", replayed.sent)

    def take_all(self, spans: List[Any]) -> int:
        self.spooler.take_all(spans)
        return 0

    def pending(self) -> bool:
        return self.spooler.pending()

    def grace(self, timeout: float) -> float:
        return min(1.0, timeout / 4)

    def sync(self, timeout: float) -> bool:
        return self.spooler.sync(timeout)

    def close(self, timeout: float) -> int:
        return self.spooler.close(timeout)
