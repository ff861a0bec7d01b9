"""Carry the current span and session into worker threads.

asyncio tasks copy the context by themselves; ``ThreadPoolExecutor`` does
not, so fallom wraps its ``submit`` (and with it ``loop.run_in_executor``) to
run each job in a copy of the submitting thread's context.
"""

from __future__ import annotations

import contextvars
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

import wrapt

from fallom.tracing import _runtime

__all__ = ["bind_context", "install_thread_propagation"]

R = TypeVar("R")
_installed = False


def _submit(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    if not _runtime.STATE.settings.propagate_threads or not args:
        return wrapped(*args, **kwargs)
    return wrapped(contextvars.copy_context().run, *args, **kwargs)


def install_thread_propagation() -> None:
    """Wrap ``ThreadPoolExecutor.submit`` once; ``propagate_threads`` switches it."""
    global _installed
    if not _installed:
        wrapt.wrap_function_wrapper(ThreadPoolExecutor, "submit", _submit)
        _installed = True


def bind_context(func: Callable[..., R]) -> Callable[..., R]:
    """Return ``func`` bound to a snapshot of the current context.

    For thread APIs fallom does not patch: ``threading.Thread(target=
    fallom.bind_context(work))`` runs ``work`` under the caller's span and
    session. Each call runs in its own copy of the snapshot. (Not
    contextvars-extras' ``bind_to_snapshot_context``: 0.7.0 drops the
    arguments given at call time.)

    Args:
        func: the callable to run later, maybe in another thread.

    Returns:
        A function taking ``func``'s arguments and returning or raising exactly what
        ``func`` does, inside the context current when ``bind_context`` was called.
        Never raises itself.
    """
    snapshot = contextvars.copy_context()

    @functools.wraps(func)
    def bound(*args: Any, **kwargs: Any) -> R:
        return snapshot.copy().run(func, *args, **kwargs)

    return bound
