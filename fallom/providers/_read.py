"""Duck-typed reading of provider objects and their JSON (dict) forms alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Dict, List, Optional

__all__ = ["compact", "get", "items"]


def get(obj: Any, *path: str) -> Any:
    """``obj.a.b`` or ``obj["a"]["b"]``, None where anything along the way is missing."""
    for key in path:
        if obj is None:
            return None
        obj = obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)
    return obj


def items(obj: Any, *path: str) -> List[Any]:
    """A list found at ``path``, or an empty one."""
    value = get(obj, *path)
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return list(value)  # protobuf repeated fields (google-generativeai)
    return []


def compact(fields: Dict[str, Any]) -> Dict[str, Any]:
    """Drop None values, including inside ``attributes``."""
    out = {k: v for k, v in fields.items() if v is not None}
    attrs: Optional[Dict[str, Any]] = out.get("attributes")
    if attrs is not None:
        attrs = {k: v for k, v in attrs.items() if v is not None}
        if attrs:
            out["attributes"] = attrs
        else:
            del out["attributes"]
    return out
