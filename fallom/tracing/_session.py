"""A session's identity, as spans inside its block carry it.

The user-facing session object (``fallom.session``) lives above the providers and
experiments it reaches (``fallom._session``); spans need only this frozen value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Optional

__all__ = ["SessionContext"]


@dataclass(frozen=True)
class SessionContext:
    """A frozen copy of a session's identity, safe to hand to other threads."""

    config_key: str
    session_id: str
    customer_id: Optional[str] = None
    metadata: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    tags: tuple[str, ...] = ()
