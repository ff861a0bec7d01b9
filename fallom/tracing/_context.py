"""The context registry: current span, current session, pending prompt.

Declared with contextvars-extras so the state is one named registry; the hot
path reads the underlying ``ContextVar`` objects directly, which costs a
tenth of the registry's attribute access.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Optional

from contextvars_extras import ContextVarsRegistry

if TYPE_CHECKING:
    from fallom.tracing._session import SessionContext
    from fallom.tracing._span import Span

__all__ = ["CURRENT_PROMPT", "CURRENT_SESSION", "CURRENT_SPAN", "ENTRIES", "FallomContext",
           "activate", "current", "enter", "leave"]


class FallomContext(ContextVarsRegistry):  # type: ignore[misc]
    """What fallom keeps per thread and per asyncio task.

    The registry resolves these annotations at class creation, before the
    span and session modules exist, so they are typed on the aliases below.
    """

    span: Optional[Any] = None
    session: Optional[Any] = None
    prompt: Optional[Any] = None


current = FallomContext()


def _var(name: str) -> Any:
    return FallomContext.__dict__[name].context_var


CURRENT_SPAN: ContextVar[Optional[Span]] = _var("span")
CURRENT_SESSION: ContextVar[Optional[SessionContext]] = _var("session")
CURRENT_PROMPT: ContextVar[Optional[Any]] = _var("prompt")


# Makes a span current: a mirror of the current runtime's ``activate``, kept by
# ``_state.swap`` (a module attribute is the cheapest read on the hot path).
activate: Any = CURRENT_SPAN.set

# The open ``with`` entries of reusable session objects, per context: the same
# object entered by two tasks or threads keeps each entry's state apart, and
# each exit finds its own. (A ``fallom.span(...)`` keeps its entry on the span
# it made current, which its exit finds as the current span.)
ENTRIES: ContextVar[tuple[tuple[object, Any], ...]] = ContextVar("fallom_entries", default=())


def enter(owner: object, state: Any) -> None:
    """Remember ``state`` for ``owner``'s entry in this context."""
    ENTRIES.set((*ENTRIES.get(), (owner, state)))


def leave(owner: object) -> Any:
    """The state of ``owner``'s innermost entry in this context (forgotten), or None."""
    entries = ENTRIES.get()
    for index in range(len(entries) - 1, -1, -1):
        if entries[index][0] is owner:
            ENTRIES.set(entries[:index] + entries[index + 1:])
            return entries[index][1]
    return None
