"""Deliver records to ``POST {traces_url}/v1/traces`` as the Fallom cloud takes them.

The cloud is known to accept one bare record per request, in plain JSON:
that is what this exporter sends, several requests in flight at once on
kept-alive connections, until a reply from the traces URL carries
``Fallom-Ingest: batch, gzip``. From then on it sends ``{"traces": [...]}``
batches and/or gzip bodies, whichever token the server named
(``init(batch=...)`` forces either mode).

429, 502, 503, 504, connection errors and timeouts are retried with
exponential backoff and jitter, ``Retry-After`` lengthening a wait but never
shortening it, until a per-request deadline; a 413 splits a batch; anything
else is dropped and counted. At shutdown retries go on within the shutdown
budget, then stop. The API key travels only in the ``Authorization`` header
and never follows a redirect.
"""

from __future__ import annotations

import email.utils
import math
import queue
import random
import threading
import time
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

import requests

from fallom.exporters._base import EncodingExporter, ExportResult, Record
from fallom.exporters._encode import batch_body, fit_record, gzip, split_batches
from fallom.infra._config import Settings, is_loopback_url
from fallom.infra._guard import logger
from fallom.tracing._suppress import suppress_here

__all__ = ["HttpExporter", "ingest_tokens", "retry_after_seconds"]

RETRYABLE = frozenset({429, 502, 503, 504})
INGEST_HEADER = "Fallom-Ingest"
_BACKOFF_FIRST_S = 0.2
_BACKOFF_MAX_S = 5.0
_CONNECTION_FAILED = -1  # a status-like code: no reply (refused, reset, timed out)
_REQUEST_FAILED = -2  # the request could not be made at all: not worth retrying


def retry_after_seconds(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def ingest_tokens(value: Optional[str]) -> frozenset[str]:
    """The tokens of a ``Fallom-Ingest`` header, e.g. ``{"batch", "gzip"}``."""
    if not value:
        return frozenset()
    return frozenset(token.strip().lower() for token in value.split(",") if token.strip())


class HttpExporter(EncodingExporter):
    """Sends records over pooled ``requests`` sessions; bare records until told otherwise."""

    def __init__(self, url: str, api_key: str, *, timeout: float = 10.0,
                 max_batch_bytes: int = 4_000_000, retry_deadline: float = 30.0,
                 batch: Optional[bool] = None, concurrency: int = 16,
                 compress: Optional[bool] = None, spool_dir: Optional[str] = None) -> None:
        self.url = url.rstrip("/") + "/v1/traces"
        self.spool_dir = spool_dir  # only to say where given-up spans go
        self.last_failure: Optional[str] = None  # why the latest request failed, for the exit line
        self._api_key = api_key
        self.timeout = timeout
        self.max_batch_bytes = max_batch_bytes
        self.retry_deadline = retry_deadline
        self.forced = batch
        self.concurrency = max(1, concurrency)
        # gzip only where it saves something: not on loopback, unless asked for
        self.may_compress = compress if compress is not None else not is_loopback_url(url)
        self.batches = bool(batch)
        self.compress = self.batches and self.may_compress
        self._logged: set[object] = set()
        self._answered = False  # has the traces URL replied yet (and so said what it takes)?
        self.after_fork()

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpExporter:
        return cls(settings.traces_url, settings.api_key or "", timeout=settings.export_timeout,
                   max_batch_bytes=settings.max_batch_bytes, batch=settings.batch,
                   concurrency=settings.export_concurrency, compress=settings.compress,
                   retry_deadline=settings.export_retry_timeout, spool_dir=settings.spool_dir)

    def __repr__(self) -> str:
        return f"HttpExporter(url={self.url!r})"

    def after_fork(self) -> None:
        """A forked child must not share the parent's sockets."""
        self._sessions: queue.LifoQueue[requests.Session] = queue.LifoQueue()
        self._abort = threading.Event()
        self._changed = threading.Event()  # the drain deadline was set: waits re-check it
        self._drain_deadline = math.inf

    def drain_until(self, deadline: float) -> None:
        """Shutting down: retries go on until ``deadline`` (monotonic), no longer."""
        self._drain_deadline = deadline
        self._changed.set()

    def interrupt(self) -> None:
        """Out of time: a wait in progress ends now and what is left is given up."""
        self._abort.set()

    def shutdown(self) -> None:
        """Everything was drained: release the connections."""
        self._abort.set()
        while True:
            try:
                self._sessions.get_nowait().close()
            except queue.Empty:
                return

    # -- export ------------------------------------------------------------------
    def export(self, records: List[Record]) -> ExportResult:
        """Deliver ``records``; the result says what became of each."""
        result = ExportResult()
        parts = []
        for record in records:
            encoded, cut = fit_record(record, self.max_batch_bytes)
            result.cut += cut
            parts.append(encoded)
        return self.export_encoded(parts, result)

    def export_encoded(self, parts: List[bytes], result: Optional[ExportResult] = None, *,
                       retries: bool = True) -> ExportResult:
        """Deliver records already encoded; ``retries=False``: one attempt each (a replay
        from the spool, whose own backoff is the retry)."""
        result = result if result is not None else ExportResult()
        deadline = self.retry_deadline if retries else 0.0
        while parts and not self.batches and self.forced is None and not self._answered:
            probe, parts = parts[:1], parts[1:]
            if not self._post(probe, result, deadline):  # the first reply says what it takes
                # unreachable for the whole retry budget: the rest would wait as long, each
                reason = result.failed[-1][0] if result.failed else "retries_exhausted"
                result.give_up(reason, parts)
                return result
        if parts and self.batches:
            for batch in split_batches(parts, self.max_batch_bytes):
                self._post(batch, result, deadline)
        elif parts:
            self._post_each(parts, result, deadline)
        return result

    def _post_each(self, parts: List[bytes], result: ExportResult, deadline: float) -> None:
        """One request per record, up to ``concurrency`` in flight."""
        pending: Iterator[bytes] = iter(parts)
        lock = threading.Lock()
        results: List[ExportResult] = []

        def work() -> None:
            suppress_here()
            mine = ExportResult()
            while True:
                with lock:
                    part = next(pending, None)
                if part is None:
                    break
                self._post([part], mine, deadline)
            with lock:
                results.append(mine)

        helpers = []
        for _ in range(min(self.concurrency, len(parts)) - 1):
            thread = threading.Thread(target=work, name="fallom-export-http", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # interpreter shutting down: this thread does it all
                break
            helpers.append(thread)
        work()
        for thread in helpers:
            thread.join()
        for mine in results:
            result.merge(mine)

    def _post(self, parts: List[bytes], result: ExportResult, budget: float) -> bool:
        """Send ``parts`` in one request, retrying within ``budget`` seconds; True when the
        server answered (even to refuse), False when it was given up as unreachable."""
        body, headers = self._body(parts)
        deadline = time.monotonic() + budget
        for attempt in range(1_000_000):
            reply = self._send(body, headers)
            status = reply.status
            if 200 <= status < 300:
                refused = min(reply.rejected, len(parts))
                result.sent += len(parts) - refused
                result.batches += 1
                if refused:
                    result.drop("rejected", refused)
                    self._log_once("rejected", "fallom: %s refused %d of %d spans: %s", self.url,
                                   refused, len(parts), reply.detail or "no reason given")
                logger.debug("fallom: delivered %d spans", len(parts) - refused)
                return True
            if status == 413 and len(parts) > 1:
                half = len(parts) // 2
                self._post(parts[:half], result, budget)
                self._post(parts[half:], result, budget)
                return True
            if status == _REQUEST_FAILED:
                result.drop("export_error", len(parts))
                return True
            retryable = status in RETRYABLE or status == _CONNECTION_FAILED
            if not retryable and status < 500:  # the client's fault: refused for good
                self._log_status(status)
                result.drop("payload_too_large" if status == 413 else "http_status", len(parts))
                return True
            self.last_failure = reply.cause
            if not retryable:  # 500, 501, ...: a passing fault, not worth a retry
                self._log_failure(reply.cause, retrying=False)
                result.give_up("http_status", parts)
                return False
            delay = max(self._backoff(attempt), reply.retry_after or 0.0)
            if time.monotonic() + delay > deadline:
                self._log_failure(reply.cause, retrying=False)
                logger.debug("fallom: giving up on %d spans after %d attempts (last: %s)",
                             len(parts), attempt + 1, reply.cause)
                result.give_up("retries_exhausted", parts)
                return False
            self._log_failure(reply.cause, retrying=True)
            if not self._sleep(time.monotonic() + delay):
                result.give_up("shutdown", parts)
                return False
            result.retried += 1
            logger.debug("fallom: retried %d spans after %.2f s (%s)", len(parts), delay,
                         reply.cause)
        result.drop("retries_exhausted", len(parts))  # pragma: no cover
        return False

    def _log_failure(self, cause: str, retrying: bool) -> None:
        """The first failure to deliver, said once while the program runs: where, why, and
        what happens to the spans."""
        if self.spool_dir:
            then = f"spans that still fail go to the spool {self.spool_dir}"
        else:
            then = "spans that still fail are dropped and counted"
        now = f"retrying for up to {self.retry_deadline:g} s; " if retrying else ""
        self._log_once("failure", "fallom: cannot deliver spans to %s: %s; %s%s", self.url,
                       cause, now, then)

    def _sleep(self, until: float) -> bool:
        """Wait for a retry at ``until``; False when shutdown leaves no time for it."""
        while not self._abort.is_set():
            if until > self._drain_deadline:
                return False
            remaining = until - time.monotonic()
            if remaining <= 0:
                return True
            if self._changed.wait(remaining):
                self._changed.clear()
        return False

    def _body(self, parts: List[bytes]) -> Tuple[bytes, dict[str, str]]:
        headers = {"Authorization": f"Bearer {self._api_key}",
                   "Content-Type": "application/json"}
        body = batch_body(parts) if self.batches else parts[0]
        if self.compress:
            body = gzip(body)
            headers["Content-Encoding"] = "gzip"
        return body, headers

    def _send(self, body: bytes, headers: dict[str, str]) -> _Reply:
        try:
            session = self._sessions.get_nowait()
        except queue.Empty:
            session = requests.Session()
            session.trust_env = False  # no proxies or .netrc credentials for our endpoint
        try:
            response = session.post(self.url, data=body, headers=headers, allow_redirects=False,
                                    timeout=(min(5.0, self.timeout), self.timeout))
        except (requests.ConnectionError, requests.Timeout) as exc:
            session.close()
            return _Reply(_CONNECTION_FAILED, cause=_connection_cause(exc))
        except requests.RequestException as exc:
            session.close()
            self._log_once(type(exc), "fallom: cannot send to %s: %s (not retried)", self.url,
                           type(exc).__name__)
            return _Reply(_REQUEST_FAILED, cause=type(exc).__name__)
        with response:
            self._negotiate(response)
            status = response.status_code
            reply = _Reply(status, retry_after_seconds(response.headers.get("Retry-After")),
                           cause=f"answered {status}")
            if 200 <= status < 300:
                reply = reply._replace(**_refusals(response))
        self._sessions.put(session)
        return reply

    def _negotiate(self, response: requests.Response) -> None:
        """Each reply says what the server takes; a success without the header means none."""
        self._answered = True
        if self.forced is not None:
            return
        tokens = ingest_tokens(response.headers.get(INGEST_HEADER))
        if tokens or 200 <= response.status_code < 300:
            self.batches = "batch" in tokens
            self.compress = "gzip" in tokens and self.may_compress

    @staticmethod
    def _backoff(attempt: int) -> float:
        return float(min(_BACKOFF_MAX_S, _BACKOFF_FIRST_S * 2**attempt) * random.uniform(0.5, 1.5))

    def _log_once(self, key: object, message: str, *args: object) -> None:
        if key not in self._logged:
            self._logged.add(key)
            logger.warning(message, *args)

    def _log_status(self, status: int) -> None:
        self.last_failure = f"answered {status}"
        if status in (401, 403):
            hint = "it refused the API key; spans are dropped: check FALLOM_API_KEY"
        elif status == 404:
            hint = "no traces endpoint at that path; spans are dropped"
            if self.url.endswith("/v1/traces/v1/traces"):
                hint += " (traces_url is the server's base URL, without /v1/traces)"
        else:
            hint = "spans are dropped"
        self._log_once(status, "fallom: %s answered %d: %s", self.url, status, hint)


class _Reply(NamedTuple):
    """What one request came to: a status (or a negative code for no reply) and why."""

    status: int
    retry_after: Optional[float] = None
    cause: str = ""
    rejected: int = 0  # records a 2xx reply says it refused (fallom serve's "rejected")
    detail: str = ""  # the first reason it gave


def _refusals(response: requests.Response) -> Dict[str, Any]:
    """The records a 2xx reply refused, when its JSON body says so."""
    if "json" not in response.headers.get("Content-Type", ""):
        return {}
    try:
        body = response.json() if len(response.content) < 1_000_000 else None
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    rejected = body.get("rejected")
    if type(rejected) is not int or rejected <= 0:
        return {}
    errors = body.get("errors")
    detail = errors[0] if isinstance(errors, list) and errors else ""
    return {"rejected": rejected, "detail": str(detail)[:200]}


def _connection_cause(exc: Exception) -> str:
    """What a user can act on: refused, TLS, name, timeout."""
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error (is it an http:// server?)"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    text = repr(exc)
    if "Connection refused" in text or "ConnectionRefused" in text:
        return "connection refused (is the server running, on that port?)"
    if "Name or service not known" in text or "NameResolution" in text or \
            "getaddrinfo" in text:
        return "the host name does not resolve"
    if "RemoteDisconnected" in text or "reset" in text.lower():
        return "the connection was dropped"
    return "connection error"

