"""Deliver batches to ``POST {traces_url}/v1/traces``, retrying what is worth retrying.

429, 502, 503, 504, connection errors and timeouts are retried with
exponential backoff and jitter, honouring ``Retry-After``, until a per-batch
deadline; a 413 splits the batch; anything else is dropped and counted. The
API key travels only in the ``Authorization`` header and never follows a
redirect.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from typing import List, Optional

import requests

from .._config import Settings
from .._guard import logger
from ._base import Record, Stats
from ._encode import fit_record, gzip, split_batches

__all__ = ["HttpExporter"]

RETRYABLE = frozenset({429, 502, 503, 504})
_BACKOFF_FIRST_S = 0.2
_BACKOFF_MAX_S = 5.0


def retry_after_seconds(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


class HttpExporter:
    """Sends records as gzip JSON batches over one ``requests.Session``."""

    def __init__(self, url: str, api_key: str, *, timeout: float = 10.0,
                 max_batch_bytes: int = 4_000_000, retry_deadline: float = 30.0) -> None:
        self.url = url.rstrip("/") + "/v1/traces"
        self._api_key = api_key
        self.timeout = timeout
        self.max_batch_bytes = max_batch_bytes
        self.retry_deadline = retry_deadline
        self.counters = Stats()  # replaced by the processor's own
        self._logged_statuses: set[int] = set()
        self.after_fork()

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpExporter:
        return cls(settings.traces_url, settings.api_key or "", timeout=settings.export_timeout,
                   max_batch_bytes=settings.max_batch_bytes)

    def __repr__(self) -> str:
        return f"HttpExporter(url={self.url!r})"

    def after_fork(self) -> None:
        """A forked child must not share the parent's sockets."""
        self._session: Optional[requests.Session] = None
        self._stop = threading.Event()

    def interrupt(self) -> None:
        """Shutting down: a backoff in progress ends now; each batch gets one last try."""
        self._stop.set()

    def shutdown(self) -> None:
        """Everything was drained: release the connections."""
        self._stop.set()
        session, self._session = self._session, None
        if session is not None:
            session.close()

    # -- export ------------------------------------------------------------------
    def export(self, records: List[Record]) -> bool:
        parts = [fit_record(record, self.max_batch_bytes) for record in records]
        ok = True
        for batch in split_batches(parts, self.max_batch_bytes):
            ok = self._post(batch) and ok
        return ok

    def _post(self, parts: List[bytes]) -> bool:
        body = gzip(parts)
        deadline = time.monotonic() + self.retry_deadline
        last_try = False  # once shutting down, a batch gets one immediate try, no waiting
        for attempt in range(1_000):
            status, retry_after = self._send(body)
            if status is not None and 200 <= status < 300:
                self.counters.add("sent", len(parts))
                self.counters.add("batches")
                logger.debug("fallom: delivered %d spans", len(parts))
                return True
            if status == 413:
                return self._split(parts)
            if status is not None and status not in RETRYABLE:
                self._log_status(status)
                return self._drop("http_status", len(parts))
            if self._stop.is_set():
                if last_try:
                    return self._drop("shutdown", len(parts))
                last_try = True
                self.counters.add("retried")
                continue
            delay = retry_after if retry_after is not None else self._backoff(attempt)
            if time.monotonic() + delay > deadline:
                logger.warning("fallom: giving up on %d spans after %d attempts (last: %s)",
                               len(parts), attempt + 1, status or "connection error")
                return self._drop("retries_exhausted", len(parts))
            self.counters.add("retried")
            logger.debug("fallom: retrying %d spans in %.2f s (%s)", len(parts), delay,
                         status or "connection error")
            last_try = self._stop.wait(delay)
        return self._drop("retries_exhausted", len(parts))  # pragma: no cover

    def _send(self, body: bytes) -> tuple[Optional[int], Optional[float]]:
        session = self._session
        if session is None:
            session = self._session = requests.Session()
            session.trust_env = False  # no proxies or .netrc credentials for our endpoint
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        }
        try:
            response = session.post(self.url, data=body, headers=headers, allow_redirects=False,
                                    timeout=(min(5.0, self.timeout), self.timeout))
        except (requests.ConnectionError, requests.Timeout):
            return None, None
        except requests.RequestException as exc:
            logger.warning("fallom: cannot send to %s: %s", self.url, type(exc).__name__)
            return 400, None  # not retryable
        with response:
            return response.status_code, retry_after_seconds(response.headers.get("Retry-After"))

    def _split(self, parts: List[bytes]) -> bool:
        if len(parts) == 1:
            logger.warning("fallom: the server refused a span as too large (413)")
            return self._drop("payload_too_large", 1)
        half = len(parts) // 2
        first = self._post(parts[:half])
        return self._post(parts[half:]) and first

    @staticmethod
    def _backoff(attempt: int) -> float:
        return float(min(_BACKOFF_MAX_S, _BACKOFF_FIRST_S * 2**attempt) * random.uniform(0.5, 1.5))

    def _drop(self, reason: str, count: int) -> bool:
        self.counters.drop(reason, count)
        return False

    def _log_status(self, status: int) -> None:
        if status not in self._logged_statuses:
            self._logged_statuses.add(status)
            logger.warning("fallom: %s answered %d; %s", self.url, status,
                           "check FALLOM_API_KEY" if status in (401, 403) else "spans dropped")
