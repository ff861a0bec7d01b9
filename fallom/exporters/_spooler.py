"""The spool as a stage of its own: one thread writes to disk what cannot be sent now.

Two kinds of work reach it: spans a full queue could not take (handed over on
the caller's thread in O(1)) and encoded records the exporter gave up for a
passing reason (from the export worker). Writing on a thread of its own means
neither waits for the other: overflow reaches the disk while the export
worker sits in retries or in a hanging request. Replaying belongs to the
export worker, which owns the network.
"""

from __future__ import annotations

import collections
import threading
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple, Union

from fallom.exporters._spool import Replayed, Spool
from fallom.infra._counters import Stats
from fallom.infra._fork import register
from fallom.infra._guard import report_internal_error

__all__ = ["Spooler"]

Encode = Callable[[Any], Optional[bytes]]
Given = Tuple[str, List[Optional[bytes]]]  # (why, records encoded; None where redacted)


class _Sync:
    """Placed in the inbox by ``sync``; set once everything before it is on disk."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class Spooler:
    """Writes overflow spans and given-up records to a :class:`Spool`, off every hot path."""

    def __init__(self, spool: Spool, encode: Encode, counters: Stats, limit: int,
                 undelivered: Callable[[int], None]) -> None:
        self.spool = spool
        self.limit = limit  # spans held in memory at most, waiting for the disk
        self._encode = encode
        self._counters = counters
        self._undelivered = undelivered  # tells the processor: not delivered (yet)
        register(self)
        self._after_fork()

    def _after_fork(self) -> None:
        # spans (overflow), (reason, encoded records) given up by the exporter, sync markers
        self._inbox: Deque[Union[Any, Given, _Sync]] = collections.deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._closed = False

    @property
    def directory(self) -> str:
        return self.spool.directory

    # -- inputs ----------------------------------------------------------------------
    def take(self, span: Any) -> bool:
        """A span the queue had no room for (caller's thread, O(1)); False when full too."""
        inbox = self._inbox
        if len(inbox) >= self.limit or self._closed:
            return False
        inbox.append(span)
        if not self._wake.is_set():  # a read without a lock; set() is taken once per wake
            self._poke()
        return True

    def take_all(self, spans: List[Any]) -> None:
        """Spans left in the queue at exit: all of them, whatever the limit."""
        if spans:
            self._inbox.append(("shutdown", [self._encoded(span) for span in spans]))
            self._poke()

    def keep(self, reason: str, parts: List[bytes]) -> None:
        """Encoded records the exporter gave up for a passing ``reason``."""
        if parts:
            self._inbox.append((reason, list(parts)))
            self._poke()

    def sync(self, timeout: float) -> bool:
        """Wait until everything handed over before now is written (or counted)."""
        if self._thread is None and not self._inbox:
            return True
        marker = _Sync()
        self._inbox.append(marker)
        self._poke()
        return marker.done.wait(max(timeout, 0.0))

    def replay(self, send: Callable[[List[bytes]], bool], batch: int) -> Replayed:
        return self.spool.replay(send, batch)

    def pending(self) -> bool:
        return self.spool.pending()

    def close(self, timeout: float) -> int:
        """Write what is left, stop the thread; the records the spool now holds."""
        self._closed = True
        thread = self._thread
        if thread is not None:
            self._wake.set()
            thread.join(max(timeout, 0.0))
        if thread is None or not thread.is_alive():
            self._write_all()  # anything handed over after the thread's last look
        return self.spool.remaining()

    # -- the thread --------------------------------------------------------------------
    def _poke(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._closed:
                    thread = threading.Thread(target=self._run, name="fallom-spool",
                                              daemon=True)
                    try:
                        thread.start()
                    except RuntimeError:  # the interpreter is exiting: close() writes it
                        return
                    self._thread = thread
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                self._write_all()
            except Exception as exc:  # never let the thread die
                report_internal_error(exc, "spool writer")
            if self._closed and not self._inbox:
                return

    def _write_all(self) -> None:
        inbox = self._inbox
        while inbox:
            batch: Dict[str, List[bytes]] = {}
            syncs: List[_Sync] = []
            count = 0
            while inbox and count < 512:
                item = inbox.popleft()
                if isinstance(item, _Sync):
                    syncs.append(item)
                    break
                reason, parts = item if isinstance(item, tuple) else \
                    ("queue_full", [self._encoded(item)])
                kept = [part for part in parts if part is not None]  # None: redacted
                self._counters.drop("redacted", len(parts) - len(kept))
                batch.setdefault(reason, []).extend(kept)
                count += len(kept)
            for reason, parts in batch.items():
                self._write(reason, parts)
            for marker in syncs:
                marker.done.set()

    def _encoded(self, span: Any) -> Optional[bytes]:
        try:
            return self._encode(span)
        except Exception as exc:
            report_internal_error(exc, "encoding a span for the spool")
            return None

    def _write(self, reason: str, parts: List[bytes]) -> None:
        """Write ``parts``; what the disk did not take is dropped for ``reason``."""
        if not parts:
            return
        written = self.spool.write(parts)
        self._counters.add("spooled", written.kept)
        self._counters.drop("spool_full", written.evicted + written.refused)
        self._counters.drop(reason, len(parts) - written.kept - written.refused)
        self._undelivered(len(parts))
