"""Deliver what is queued however the process ends: exit, SIGTERM, a multiprocessing child.

- Normal exit: ``atexit``.
- SIGTERM (how orchestrators and service managers stop a process): with
  Python's default disposition nothing else runs, so ``init()`` in the main
  thread installs a handler when none was set. It drains within
  ``shutdown_timeout``, then restores the default and re-delivers the signal,
  so the process still ends by SIGTERM. A handler the application installed
  is never replaced (call ``fallom.shutdown()`` from it).
- ``multiprocessing`` children started by fork or forkserver leave through
  ``os._exit``: a ``multiprocessing.util.Finalize`` registered in each child
  drains there, bounded by ``shutdown_timeout`` (pools included).

Each of these three is an exit drain. A SIGTERM arriving during one (a pool's
``terminate()`` sends it to workers already draining at their exit) is held
until the drain has finished or given up within its bound, then re-delivered:
running a second drain inside the first would find nothing left to drain and
kill the process with its spans still queued. Ctrl-C during an exit drain ends
it at once, without a traceback: the processors say what they left behind.
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
from typing import Any, Callable, Optional

from fallom.infra._fork import at_fork

__all__ = ["install", "release_signals"]

_shutdown: Optional[Callable[..., None]] = None
_atexit_done = False
_child_hook = False
_handle_signals = False  # the last init()'s handle_signals
_draining = False  # an exit drain is under way (signal handlers run in the main thread)
_deferred = False  # a SIGTERM arrived during it


@at_fork
def _not_draining() -> None:
    """A child forked while this process drains has its own spans to drain, at its own exit."""
    global _draining, _deferred
    _draining = _deferred = False


class _Anchor:
    """What ``register_after_fork`` keys its hook on (it keeps a weak reference)."""


_ANCHOR = _Anchor()


def install(shutdown: Callable[..., None], handle_signals: bool) -> None:
    """Hook ``shutdown`` into every way out of the process (idempotent)."""
    global _shutdown, _atexit_done, _handle_signals
    _shutdown, _handle_signals = shutdown, handle_signals
    if not _atexit_done:
        atexit.register(_drain)
        _atexit_done = True
    _hook_multiprocessing()
    _set_sigterm(handle_signals)


def release_signals() -> None:
    """Give SIGTERM back to Python's default, if fallom's handler holds it."""
    global _handle_signals
    _handle_signals = False
    _set_sigterm(False)


def _on_sigterm(signum: int, frame: Any) -> None:
    global _deferred
    _deferred = True  # re-delivered once the drain has finished or given up
    _drain()  # a no-op if one is under way: it goes on


def _drain() -> None:
    """Shut down within ``shutdown_timeout`` with SIGTERM held; re-deliver it after."""
    global _draining, _deferred
    if _draining:
        return
    _draining = True
    # fallom's handler holds SIGTERM; where init() could not set it (not the main thread),
    # it does for the drain. An application's handler keeps it.
    hold = _handle_signals and hasattr(signal, "SIGTERM") and \
        signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    if hold:
        _set_sigterm(True)
    try:
        if _shutdown is not None:
            _shutdown()  # drains within shutdown_timeout; says on stderr what it gave up
    except KeyboardInterrupt:  # Ctrl-C: the drain ends now, and said what it left
        pass
    except Exception:  # never keep the process from ending
        pass
    finally:
        _draining = False
        if hold:
            _set_sigterm(False)
    if _deferred:
        _deferred = False
        _redeliver()


def _redeliver() -> None:
    """End the process by SIGTERM, as it would have without fallom."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _may_set_signals() -> bool:
    """Only the main thread may set a handler (and only there does one run)."""
    return hasattr(signal, "SIGTERM") and \
        threading.current_thread() is threading.main_thread()


def _set_sigterm(handle_signals: bool) -> None:
    if not _may_set_signals():
        return
    try:
        current = signal.getsignal(signal.SIGTERM)
        if handle_signals and current is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
        elif not handle_signals and current is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except (ValueError, OSError):  # not the main interpreter, or a platform that refuses
        pass


def _register_child_drain(_: Any = None) -> None:
    from multiprocessing import util

    util.Finalize(None, _drain, exitpriority=100)


def _hook_multiprocessing() -> None:
    """A drain at the end of every ``multiprocessing`` child (and of this one, if it is one)."""
    global _child_hook
    if _child_hook:
        return
    _child_hook = True
    from multiprocessing import process, util

    util.register_after_fork(_ANCHOR, _register_child_drain)  # children forked from here
    if process.current_process()._parent_pid is not None:  # type: ignore[attr-defined]
        _register_child_drain()  # init() ran inside a child (forkserver, spawn)
