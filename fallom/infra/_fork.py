"""Every lock fallom owns is re-created in a forked child, in this one place.

A fork copies a lock in whatever state some other thread of the parent left
it; that thread does not exist in the child, so a held lock would stay held
forever (CPython's ``threading._after_fork`` does the same for its own).
Objects that own locks or threads register here; module-level locks register
a hook. Hooks run first, then the objects, before the child goes on.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any, Callable, List

__all__ = ["at_fork", "lock", "register"]

_owners: weakref.WeakSet[Any] = weakref.WeakSet()
_hooks: List[Callable[[], None]] = []


def register(owner: Any) -> None:
    """Call ``owner._after_fork()`` in every forked child while ``owner`` lives."""
    _owners.add(owner)


def at_fork(hook: Callable[[], None]) -> Callable[[], None]:
    """Call ``hook()`` in every forked child (for module-level state)."""
    _hooks.append(hook)
    return hook


def lock() -> threading.Lock:
    """A plain lock; a name that says its owner re-creates it at fork."""
    return threading.Lock()


def _reinit() -> None:
    for hook in list(_hooks):
        hook()
    for owner in list(_owners):
        owner._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit)
