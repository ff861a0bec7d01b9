"""One guard for every piece of SDK code that runs on the user's path.

Internal code on the user's path catches ``Exception`` and hands it here
(a ``try`` costs nothing until it raises, unlike a context manager). An
internal error is logged (at most once a minute per call site) and swallowed,
so a bug in fallom never changes what the user's code returns or raises.
The project's own test suite sets ``FALLOM_RAISE_INTERNAL_ERRORS=1`` so
that those bugs fail tests instead of hiding.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Optional

from fallom.infra._fork import at_fork

__all__ = ["logger", "report_internal_error", "report_misuse"]

logger = logging.getLogger("fallom")

_INTERVAL_S = 60.0
_last_logged: dict[str, float] = {}
_lock = threading.Lock()


@at_fork
def _new_lock() -> None:
    global _lock
    _lock = threading.Lock()


def _raise_internal() -> bool:
    return os.environ.get("FALLOM_RAISE_INTERNAL_ERRORS", "") == "1"


def _due(key: str) -> bool:
    """True at most once a minute per ``key``."""
    now = time.monotonic()
    with _lock:
        last = _last_logged.get(key)
        if last is not None and now - last < _INTERVAL_S:
            return False
        _last_logged[key] = now
    return True


def report_internal_error(exc: BaseException, where: str = "") -> None:
    """Log ``exc`` as a fallom bug (rate-limited); re-raise it under our tests."""
    if _raise_internal():
        raise exc
    if _due(where or type(exc).__name__):
        logger.warning("fallom internal error in %s (ignored)", where or "sdk", exc_info=exc)


def report_misuse(where: str, problem: str, exc: Optional[BaseException] = None) -> None:
    """Log a mistake in the user's use of fallom, which must not raise (rate-limited).

    Not a fallom bug: no traceback unless the user's own code raised
    (``exc``); ``problem`` names the parameter and the value's type, never
    the value (it may be captured content).
    """
    if _due(where):
        logger.warning("fallom: %s: %s; ignored", where, problem, exc_info=exc)
