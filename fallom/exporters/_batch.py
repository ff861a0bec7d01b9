"""The batch processor: a bounded queue drained by one background thread.

Modelled on OpenTelemetry's BatchProcessor, with its gaps closed: every
timeout is honoured, each drop is counted by reason, and a fork gives the
child an empty queue and a fresh worker so nothing is sent twice.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from typing import Any, Callable, Deque, Dict, List, Optional, Union

from fallom.exporters._base import EncodingExporter, as_exporter, count_result
from fallom.exporters._encode import fit_record
from fallom.exporters._fallback import Drop, SpoolStage
from fallom.exporters._spool import Spool
from fallom.infra._counters import Stats
from fallom.infra._fork import register
from fallom.infra._guard import logger, report_internal_error
from fallom.tracing._processor import SpanProcessor
from fallom.tracing._record import build_record
from fallom.tracing._span import Span
from fallom.tracing._suppress import suppress_here

__all__ = ["BatchProcessor"]

_FIRST_WAIT_S = 0.05


class _FlushMarker:
    """Placed in the queue by ``flush``; resolved once everything before it is handled."""

    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False


class BatchProcessor(SpanProcessor):
    """Queue finished spans in O(1) on the caller's thread; export them in batches.

    One background thread, started with the first span, exports them. A forked
    child starts with an empty queue and its own thread, so nothing is sent twice.

    Args:
        exporter: any object with ``export(records)`` (see ``fallom.exporters``); an
            ``EncodingExporter`` is handed records already encoded.
        max_queue_size: spans that may wait; one more is dropped as ``queue_full``
            (or, with a ``spool``, written to it).
        max_batch_size: records per ``export`` call; a queue this long wakes the
            thread before ``interval`` ends.
        interval: seconds the thread waits between exports.
        spool: where overflow and records given up for a passing reason (backend
            down, out of time) wait on disk, to be sent later, by this process or the
            next; what it already holds is sent from now on. None: they are dropped
            and counted.

    Raises:
        TypeError: a ``spool`` is given but ``exporter`` is not an ``EncodingExporter``.
    """

    def __init__(self, exporter: Any, *, max_queue_size: int = 10_000,
                 max_batch_size: int = 512, interval: float = 1.0,
                 spool: Optional[Spool] = None) -> None:
        self.exporter = exporter  # as given; ``_out`` is it with every hook
        self._out = as_exporter(exporter)
        # an exporter of encoded records is sent bytes built (and cut) on the worker
        self._encoding = exporter if isinstance(exporter, EncodingExporter) else None
        self.max_queue_size = max_queue_size
        self.max_batch_size = max_batch_size
        self.interval = interval
        self.counters = Stats()
        self._reset_runtime()
        register(self)
        self.fallback: Drop = Drop(self.counters)
        if spool is not None:
            if self._encoding is None:
                raise TypeError("a spool keeps encoded records: the exporter must be an "
                                "EncodingExporter")
            self.fallback = SpoolStage(
                spool, self._encoding, self._encode, self.counters,
                memory_limit=max(max_queue_size * 10, 100_000), batch_size=max_batch_size,
                undelivered=self._not_delivered)
        if self.fallback.pending():
            self._start()  # what earlier processes left is replayed from now on

    def _reset_runtime(self) -> None:
        self._queue: Deque[Union[Span, _FlushMarker]] = collections.deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._closing = False
        self._closed = False
        self._undelivered = 0
        self._inflight = 0
        self._abandoned = False  # shutdown counted the in-flight batch: its outcome is moot

    # -- caller side: O(1), never waits on I/O -------------------------------
    def on_end(self, span: Span) -> None:
        """Queue ``span`` for the background thread; never waits on I/O.

        Args:
            span: a span that just ended. Dropped as ``queue_full`` when the queue is
                full (unless the spool takes it), as ``shutdown`` once shutdown began;
                each drop is counted and makes the next :meth:`force_flush` False.
        """
        queue = self._queue
        if len(queue) >= self.max_queue_size or self._closing:
            # with a spool, its own thread takes the overflow to disk (never the caller)
            if self._closing or not self.fallback.take(span):
                self._lose("shutdown" if self._closing else "queue_full", 1)
            return
        queue.append(span)
        if self._thread is None:
            self._start()
        if len(queue) >= self.max_batch_size and not self._wake.is_set():
            # Event.set() takes a lock (~0.5 us): while the worker is busy the queue stays
            # past a batch, and waking it once is enough.
            self._wake.set()

    def _lose(self, reason: str, count: int) -> None:
        self.counters.drop(reason, count)
        self._not_delivered(count)

    def _not_delivered(self, count: int) -> None:
        """The next flush() reports that not everything was delivered."""
        with self._lock:
            self._undelivered += count

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._closing:
                return
            thread = threading.Thread(target=self._run, name="fallom-export", daemon=True)
            thread.start()
            self._thread = thread

    # -- worker ----------------------------------------------------------------
    def _run(self) -> None:
        wait = min(self.interval, _FIRST_WAIT_S)
        while True:
            self._wake.wait(wait)
            self._wake.clear()
            wait = self.interval
            closing = self._closing
            try:
                self._drain()
                if not closing:
                    self.fallback.replay()
            except Exception as exc:  # never let the worker die
                report_internal_error(exc, "export worker")
            if closing and not self._queue:
                return

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            batch: List[Span] = []
            marker: Optional[_FlushMarker] = None
            while queue and len(batch) < self.max_batch_size:
                item = queue.popleft()
                if isinstance(item, _FlushMarker):
                    marker = item
                    break
                batch.append(item)
            if batch:
                self._export(batch)
            if marker is not None:
                marker.done.set()

    def _export(self, batch: List[Span]) -> None:
        suppress_here()  # fallom's own requests are never traced
        encoding = self._encoding
        records: List[Any] = []
        for span in batch:
            try:
                record = self._encode(span) if encoding is not None else build_record(span)
            except Exception as exc:
                report_internal_error(exc, "build_record")
                self._lose("export_error", 1)
                continue
            if record is None:
                self.counters.drop("redacted")
            else:
                if encoding is None and span._cut:
                    self.counters.add("cut")
                records.append(record)
        if not records:
            return
        self._inflight = len(records)
        result: Any = False
        try:
            result = encoding.export_encoded(records) if encoding is not None \
                else self._out.export(records)
        except Exception as exc:  # a bug in a built-in exporter fails our tests
            if type(self.exporter).__module__.startswith("fallom."):
                report_internal_error(exc, f"{type(self.exporter).__name__}.export")
            else:
                logger.warning("fallom: exporter %s failed: %s", type(self.exporter).__name__,
                               type(exc).__name__)
        finally:
            with self._lock:
                self._inflight, abandoned = 0, self._abandoned
        if abandoned:
            return  # counted as given up at shutdown already
        self.fallback.after_export(result)
        if not count_result(self.counters, result, len(records)):
            with self._lock:
                self._undelivered += len(records)

    def _encode(self, span: Span) -> Optional[bytes]:
        """The record as the exporter sends it, cut to its size cap; a cut is counted."""
        record = build_record(span)
        if record is None:
            return None
        limit = self._encoding.max_batch_bytes if self._encoding is not None else 4_000_000
        data, cut = fit_record(record, limit)
        if cut or span._cut:
            self.counters.add("cut")
        return data

    # -- flush and shutdown --------------------------------------------------------
    def force_flush(self, timeout: float) -> bool:
        """Wait until everything queued before the call was exported (or spooled).

        Args:
            timeout: seconds to wait at most.

        Returns:
            True when everything queued before the call was delivered in time. False
            after :meth:`shutdown`, when time ran out, or when a span was dropped or
            not delivered since the previous flush.
        """
        deadline = time.monotonic() + max(timeout, 0.0)
        if self._closed:
            return False  # shut down: nothing more will be delivered
        if self._thread is not None or self._queue:
            marker = _FlushMarker()
            self._queue.append(marker)
            if self._thread is None:
                self._start()
            self._wake.set()
            if not marker.done.wait(max(timeout, 0.0)):
                return False
        if not self.fallback.sync(deadline - time.monotonic()):
            return False
        with self._lock:
            ok, self._undelivered = self._undelivered == 0, 0
        return ok

    def shutdown(self, timeout: float) -> None:
        """Drain within ``timeout``, retrying as needed; then give up, count and say so.

        The exporter's ``drain_until``, then ``shutdown`` (or, out of time,
        ``interrupt``) are called. What is left undelivered is dropped as ``shutdown``
        (or kept in the spool) and said on stderr. Spans ended later are dropped; a
        second call does nothing.

        Args:
            timeout: seconds the drain may take; closing a spool may add up to one.

        Raises:
            KeyboardInterrupt: Ctrl-C interrupted the drain (what it left is said
                first). Nothing else.
        """
        with self._lock:
            if self._closed:
                return
            self._closing = self._closed = True
        deadline = time.monotonic() + max(timeout, 0.0)
        dropped_before = self.counters.get("dropped.shutdown")
        self._call_exporter(self._out.drain_until, deadline)
        thread = self._thread
        self._wake.set()
        interrupted = False
        # with a spool, the last part of the budget is for handing what fails to it
        grace = self.fallback.grace(timeout)
        try:
            if thread is not None:
                thread.join(max(timeout - grace, 0.0))
            if thread is not None and thread.is_alive() and grace:
                self._call_exporter(self._out.interrupt)  # out of time: what fails now is spooled
                thread.join(grace)
        except KeyboardInterrupt:  # Ctrl-C: the drain ends now, saying what it left
            interrupted = True
        left = 0
        # an interrupted join() leaves is_alive() False for a live thread (CPython 3.11)
        if thread is not None and (interrupted or thread.is_alive()):
            with self._lock:
                self._abandoned = True
                left = self._inflight
            self.counters.drop("shutdown", left)  # the batch in flight, once
            self._call_exporter(self._out.interrupt)  # out of time: a wait in progress ends now
            # every span still queued, foreign ones included: only flush markers are not
            waiting = [item for item in _take_all(self._queue)
                       if not isinstance(item, _FlushMarker)]
            left += self.fallback.take_all(waiting)
        else:
            self._call_exporter(self._out.shutdown)
        left = max(left, self.counters.get("dropped.shutdown") - dropped_before)
        self._say_what_was_left(timeout, left, interrupted)
        if interrupted:
            raise KeyboardInterrupt

    def _say_what_was_left(self, timeout: float, left: int, interrupted: bool) -> None:
        """At exit, one line each: what was given up, and what waits on disk."""
        failure = self._out.last_failure
        cause = f" (last: {failure})" if failure else ""
        when = "interrupted" if interrupted else f"gave up delivering after {round(timeout, 1):g} s"
        if left:
            sys.stderr.write(f"fallom: {when}; {left} spans undelivered{cause}\n")
        held = self.fallback.close(1.0)  # local disk writes: quick, whatever the budget
        if held:
            sys.stderr.write(f"fallom: {held} undelivered spans wait in the spool "
                             f"{self.fallback.directory} for the next run{cause}\n")

    @staticmethod
    def _call_exporter(hook: Callable[..., None], *args: Any) -> None:
        try:
            hook(*args)
        except Exception as exc:
            report_internal_error(exc, f"exporter {hook.__name__}")

    def stats(self) -> Dict[str, Any]:
        """What became of the spans handed to it, as :func:`fallom.stats` merges them.

        Returns:
            ``sent``, ``retried``, ``batches``, ``cut``, ``spooled``, ``replayed`` and
            ``dropped`` (a count per reason).
        """
        return self.counters.snapshot()

    def _after_fork(self) -> None:
        self._reset_runtime()
        self._out.after_fork()


def _take_all(queue: Deque[Any]) -> List[Any]:
    """Empty ``queue`` with ``popleft`` (atomic), safe while another thread pops it too."""
    items = []
    while True:
        try:
            items.append(queue.popleft())
        except IndexError:
            return items
