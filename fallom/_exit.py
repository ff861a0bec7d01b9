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
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
from typing import Any, Callable, Optional

__all__ = ["install", "release_signals"]

_shutdown: Optional[Callable[..., None]] = None
_atexit_done = False
_child_hook = False


class _Anchor:
    """What ``register_after_fork`` keys its hook on (it keeps a weak reference)."""


_ANCHOR = _Anchor()


def install(shutdown: Callable[..., None], handle_signals: bool) -> None:
    """Hook ``shutdown`` into every way out of the process (idempotent)."""
    global _shutdown, _atexit_done
    _shutdown = shutdown
    if not _atexit_done:
        atexit.register(shutdown)
        _atexit_done = True
    _hook_multiprocessing()
    _set_sigterm(handle_signals)


def release_signals() -> None:
    """Give SIGTERM back to Python's default, if fallom's handler holds it."""
    _set_sigterm(False)


def _on_sigterm(signum: int, frame: Any) -> None:
    if _shutdown is not None:
        try:
            _shutdown()  # drains within shutdown_timeout; says on stderr what it gave up
        except Exception:  # never keep the process from ending
            pass
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _set_sigterm(handle_signals: bool) -> None:
    if not hasattr(signal, "SIGTERM") or threading.current_thread() is not threading.main_thread():
        return
    try:
        current = signal.getsignal(signal.SIGTERM)
        if handle_signals and current is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
        elif not handle_signals and current is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except (ValueError, OSError):  # not the main interpreter, or a platform that refuses
        pass


def _drain_in_child() -> None:
    if _shutdown is not None:
        _shutdown()


def _register_child_drain(_: Any = None) -> None:
    from multiprocessing import util

    util.Finalize(None, _drain_in_child, exitpriority=100)


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
