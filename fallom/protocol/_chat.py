"""Reading a chat request the way every provider shapes it: its last user turn, its system
message, a message's text. Shared by ``fallom.evals`` (datasets from traces) and
``fallom serve`` (datasets from stored traces), so both make the same item of a trace."""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional, Tuple

__all__ = ["last_turn", "message_text", "reply_text"]


def message_text(value: Any) -> str:
    """A message's content as text: a string as it is, text parts joined, anything else
    as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(
            isinstance(p, Mapping) and isinstance(p.get("text"), str) for p in value):
        return "\n".join(p["text"] for p in value)
    return json.dumps(value, ensure_ascii=False, default=str)


def last_turn(value: Any) -> Tuple[Optional[str], Optional[str]]:
    """(the last user message's text, the system message) of a chat request: a message
    list, or a request holding ``messages`` (and Anthropic's ``system``); (None, None)
    for anything else."""
    system = None
    if isinstance(value, Mapping) and isinstance(value.get("messages"), list):
        system = value.get("system") if isinstance(value.get("system"), str) else None
        value = value["messages"]
    if not isinstance(value, list) or not value or not all(
            isinstance(m, Mapping) and "role" in m for m in value):
        return None, None
    users = [m.get("content") for m in value if m.get("role") == "user"]
    systems = [m.get("content") for m in value if m.get("role") == "system"]
    if system is None and systems:
        system = message_text(systems[0])
    return (message_text(users[-1]) if users else None), system


def reply_text(value: Any) -> str:
    """A reply's text: a reply with tool calls gives its text, anything else
    :func:`message_text`."""
    if isinstance(value, Mapping) and isinstance(value.get("text"), str):
        return str(value["text"])
    return message_text(value)
