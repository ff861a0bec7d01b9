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
    from ._session import SessionContext
    from ._span import Span

__all__ = ["CURRENT_PROMPT", "CURRENT_SESSION", "CURRENT_SPAN", "FallomContext", "activate",
           "current", "deactivate"]


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

# Making a span current. Plain ContextVar methods (no Python frame) unless
# ``init(otel_context=True)`` swaps in versions that also enter the span into
# OpenTelemetry's context (see ``_otel_context``).
activate: Any = CURRENT_SPAN.set
deactivate: Any = CURRENT_SPAN.reset
