"""HTTP for the evals: a pooled session per thread, retries, and errors that say why.

Judge and model calls run in worker threads, each with its own kept-alive
``requests`` session (a session is not safe to share between threads). 429 and
5xx answers and dropped connections are retried with exponential backoff and
jitter, ``Retry-After`` lengthening a wait; a timeout is not retried (a hung
server would cost the timeout again). Requests to Fallom (datasets, upload)
follow no redirect and read no proxy or ``.netrc`` from the environment
(docs/design.md §3.1); those to a remote judge do, as 0.2.7's did.
"""

from __future__ import annotations

import json
import random
import threading
from typing import Any, Dict, Mapping, Optional

import requests

from fallom.exporters._http import _connection_cause, retry_after_seconds
from fallom.infra._config import is_loopback_url

__all__ = ["RequestFailed", "close_thread_sessions", "encode", "request_json"]

RETRYABLE = frozenset({429, 500, 502, 503, 504})
_ATTEMPTS = 5  # the first and four retries
_BACKOFF_FIRST_S = 0.5
_BACKOFF_MAX_S = 8.0
_RETRY_AFTER_MAX_S = 60.0  # a longer Retry-After is waited this long, then tried once more
_DROPPED = "the connection was dropped"
_local = threading.local()


class RequestFailed(requests.RequestException):
    """A request that gave no usable answer; the message names the server and the reason.

    A ``requests.RequestException``, as what 0.2.7 raised was, so code that caught
    that still does.

    Args:
        message: what went wrong, for the user.
        status: the HTTP status when the server answered; None when it did not.
    """

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


def encode(payload: Any) -> bytes:
    """The body ``requests`` would send for ``json=payload`` (0.2.7's bytes); a value
    JSON has no type for (a date in metadata) is sent as its text, not refused."""
    return json.dumps(payload, allow_nan=False, default=str).encode("utf-8")


def _session(own_endpoint: bool, url: str) -> requests.Session:
    """This thread's session: one honouring the environment's proxies (a remote judge),
    one not (Fallom's endpoints, anything on this machine)."""
    trusted = not own_endpoint and not is_loopback_url(url)
    sessions: Dict[bool, requests.Session] = _local.__dict__.setdefault("sessions", {})
    session = sessions.get(trusted)
    if session is None:
        session = sessions[trusted] = requests.Session()
        session.trust_env = trusted
    return session


def close_thread_sessions() -> None:
    """Close this thread's sessions and their connections (a worker that is done)."""
    for session in _local.__dict__.pop("sessions", {}).values():
        session.close()


def request_json(method: str, url: str, *, what: str, headers: Mapping[str, str],
                 timeout: float, body: Optional[bytes] = None,
                 params: Optional[Mapping[str, str]] = None, own_endpoint: bool = False,
                 cancel: Optional[threading.Event] = None) -> Any:
    """Send one request, retrying what is worth it, and return its JSON answer.

    Args:
        method: ``GET`` or ``POST``.
        url: the full URL.
        what: who answers, for messages ("the judge", "Fallom").
        headers: the request's headers.
        timeout: seconds to wait for the answer.
        body: the encoded body; None: none.
        params: the query string's parameters; None: none.
        own_endpoint: a Fallom endpoint: no redirects, no proxies from the environment.
        cancel: set when the run was interrupted: a retry's wait ends and gives up.

    Returns:
        The parsed JSON of a 2xx answer.

    Raises:
        RequestFailed: no answer (timeout, refused), an error status after the retries,
            or a 2xx body that is not JSON.
    """
    session = _session(own_endpoint, url)
    for attempt in range(_ATTEMPTS):
        retry_after: Optional[float] = None
        try:
            response = session.request(method, url, data=body, headers=dict(headers),
                                        params=params, timeout=(min(10.0, timeout), timeout),
                                        allow_redirects=not own_endpoint)
        except requests.Timeout:
            raise RequestFailed(f"{what} at {url} did not answer within {timeout:g} s "
                                "(timeout)") from None
        except requests.ConnectionError as exc:
            cause = _connection_cause(exc)
            if cause != _DROPPED or attempt == _ATTEMPTS - 1:
                raise RequestFailed(f"cannot reach {what} at {url}: {cause}") from None
        except requests.RequestException as exc:
            raise RequestFailed(f"cannot send to {what} at {url}: {type(exc).__name__}: "
                                f"{exc}") from None
        else:
            with response:
                status = response.status_code
                if 200 <= status < 300:
                    return _json_of(response, what, url)
                if status not in RETRYABLE or attempt == _ATTEMPTS - 1:
                    raise RequestFailed(f"{what} at {url} answered {status}"
                                        f"{_reason(response)}", status)
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        _wait(attempt, retry_after, cancel, what, url)
    raise AssertionError("unreachable")  # pragma: no cover


def _json_of(response: requests.Response, what: str, url: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise RequestFailed(f"{what} at {url} answered {response.status_code} with a body "
                            "that is not JSON", response.status_code) from None


def _reason(response: requests.Response) -> str:
    """The server's own short reason (OpenAI's ``error.message``, Fallom's ``error``)."""
    try:
        body = response.json()
    except ValueError:
        return f" {response.reason}" if response.reason else ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    return f": {str(error)[:300]}" if error else ""


def _wait(attempt: int, retry_after: Optional[float], cancel: Optional[threading.Event],
          what: str, url: str) -> None:
    """Back off before the next attempt; a cancelled run gives up instead."""
    backoff = min(_BACKOFF_MAX_S, _BACKOFF_FIRST_S * 2 ** attempt) * random.uniform(0.5, 1.5)
    delay = max(backoff, min(retry_after or 0.0, _RETRY_AFTER_MAX_S))
    if (cancel or threading.Event()).wait(delay):
        raise RequestFailed(f"the run was interrupted while retrying {what} at {url}")
