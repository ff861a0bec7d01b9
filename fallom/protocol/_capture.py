"""Safe capture: any user object becomes a JSON-safe value, and never raises.

Cycles, broken ``__repr__``, bytes, sets, dataclasses, pydantic models,
NaN/inf, non-string keys, and very large or deep values are all handled;
what is cut is replaced by a visible marker so a reader knows it was cut.
Immutable scalars are kept by reference and converted later, off the
caller's path; anything mutable is converted at once so that what the user
passed is what gets recorded.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import itertools
import math
from collections.abc import Mapping
from typing import Any, Callable, NamedTuple

__all__ = ["SCALAR_TYPES", "Captured", "Limits", "clip", "resolve", "snapshot", "to_jsonable"]


class Limits(NamedTuple):
    """Per-field caps: characters per string, items per container, nesting depth."""

    max_chars: int = 10_000
    max_items: int = 1_000
    max_depth: int = 20


class Captured:
    """A value already converted on the caller's path."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


_DEFAULT = Limits()
SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})
_MAX_DEPTH_HARD = 100


def snapshot(value: Any, limits: Limits = _DEFAULT) -> Any:
    """Keep immutable scalars by reference; convert everything else now."""
    kind = type(value)
    if kind in SCALAR_TYPES:
        return value
    if (kind is list or kind is dict) and limits.max_depth > 0:  # chat messages, say
        flat = _flat_copy(value, kind, limits, limits.max_depth)
        # refused: converted item by item, without trying the flat copy a second time
        return Captured(flat if flat is not None else _guarded(_not_flat, value, limits))
    return Captured(to_jsonable(value, limits))


def resolve(value: Any, limits: Limits = _DEFAULT) -> Any:
    """The JSON-safe form of a value that went through :func:`snapshot`."""
    kind = type(value)
    if kind is Captured:
        return value.value
    if (kind is str and len(value) <= limits.max_chars) or kind is int or kind is bool \
            or value is None:
        return value
    if kind is float:
        return _float(value)
    return to_jsonable(value, limits)


def to_jsonable(value: Any, limits: Limits = _DEFAULT) -> Any:
    """Convert ``value`` to plain JSON types; never raises."""
    return _guarded(_convert, value, limits)


_READ_ATTEMPTS = 3


def _guarded(convert: Callable[[Any, Limits, int, set[int]], Any], value: Any,
             limits: Limits) -> Any:
    for _ in range(_READ_ATTEMPTS):
        try:
            return convert(value, limits, min(limits.max_depth, _MAX_DEPTH_HARD), set())
        except RecursionError:
            break
        except RuntimeError:  # another thread changed a container while it was read
            continue
        except Exception:  # the converter guards each step; this is the last resort
            break
    else:
        return f"<{type(value).__name__} changed by another thread while being read>"
    return _unrepresentable(value)


def clip(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars``, with a marker saying how much was cut."""
    if len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}…[truncated {len(text) - max_chars} chars]"


def _float(value: float) -> Any:
    if math.isfinite(value):
        return value
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


def _unrepresentable(value: Any) -> str:
    return f"<unrepresentable {type(value).__name__}>"


def _repr(value: Any, limits: Limits) -> str:
    try:
        return clip(repr(value), limits.max_chars)
    except Exception:
        return _unrepresentable(value)


def _key(key: Any, limits: Limits) -> str:
    if isinstance(key, str):
        return clip(key, limits.max_chars)
    if type(key) in SCALAR_TYPES:
        return str(key)
    return _repr(key, limits)


def _convert(value: Any, limits: Limits, depth: int, seen: set[int]) -> Any:
    kind = type(value)
    if kind is str:
        return value if len(value) <= limits.max_chars else clip(value, limits.max_chars)
    if kind is bool or kind is int or value is None:
        return value
    if kind is float:
        return _float(value)
    if kind is dict or kind is list:  # the common case, without the ABC checks below
        if depth > 0:
            flat = _flat_copy(value, kind, limits, depth)
            if flat is not None:
                return flat
        return _nested(value, kind, limits, depth, seen, _plain)
    return _convert_other(value, kind, limits, depth, seen)


_FLAT_TYPES = frozenset({str, int, bool, type(None)})


def _flat_copy(value: Any, kind: type, limits: Limits, depth: int) -> Any:
    """A copy of a dict of plain scalars, or of a list of those and such dicts (chat
    messages, say); None for anything else.

    Such values cannot hold a cycle or anything to convert, so they skip the
    bookkeeping of :func:`_nested`; anything else takes the general way. A dict
    is copied first, in one step another thread cannot interleave with, and
    checked after: one the caller's other threads keep changing cannot raise.
    """
    if len(value) > limits.max_items:
        return None
    max_chars = limits.max_chars
    if kind is dict:
        copy = dict(value)
        for key, item in copy.items():
            if type(key) is not str or len(key) > max_chars or type(item) not in _FLAT_TYPES \
                    or (type(item) is str and len(item) > max_chars):
                return None
        return copy
    out = []
    for item in value:  # a list changed meanwhile is read as it is at each step, never raises
        if type(item) is dict and depth > 1:
            item = _flat_copy(item, dict, limits, 0)
            if item is None:
                return None
        elif type(item) not in _FLAT_TYPES or (type(item) is str and len(item) > max_chars):
            return None
        out.append(item)
    return out


def _not_flat(value: Any, limits: Limits, depth: int, seen: set[int]) -> Any:
    """A list or dict that :func:`_flat_copy` refused: converted item by item."""
    return _nested(value, type(value), limits, depth, seen, _plain)


def _nested(value: Any, kind: type, limits: Limits, depth: int, seen: set[int],
            convert: Callable[[Any, Limits, int, set[int]], Any]) -> Any:
    """Depth and cycle bookkeeping around converting one container."""
    if depth <= 0:
        return f"<{kind.__name__} at max depth>"
    marker = id(value)
    if marker in seen:
        return f"<cycle {kind.__name__}>"
    seen.add(marker)
    try:
        return convert(value, limits, depth - 1, seen)
    finally:
        seen.discard(marker)


def _plain(value: Any, limits: Limits, depth: int, seen: set[int]) -> Any:
    """An exact list or dict: converted in one comprehension (a dict from a copy made in
    one step, which another thread changing it cannot interrupt)."""
    if type(value) is dict:
        value = dict(value)
    if len(value) > limits.max_items:
        return _container(value, limits, depth, seen)
    if type(value) is list:
        return [_convert(item, limits, depth, seen) for item in value]
    return {
        key if type(key) is str and len(key) <= limits.max_chars else _key(key, limits):
        _convert(item, limits, depth, seen)
        for key, item in value.items()
    }


def _convert_other(value: Any, kind: type, limits: Limits, depth: int, seen: set[int]) -> Any:
    if isinstance(value, enum.Enum):
        return _convert(value.value, limits, depth, seen)
    if isinstance(value, str):
        return clip(str.__str__(value), limits.max_chars)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _float(float(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _bytes(value, limits)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    return _nested(value, kind, limits, depth, seen, _container)


def _bytes(value: bytes | bytearray | memoryview, limits: Limits) -> str:
    raw = bytes(value[: limits.max_chars * 4])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(value)} bytes>"
    if len(raw) < len(value):
        return f"{text[: limits.max_chars]}…[truncated {len(value) - len(raw)} bytes]"
    return clip(text, limits.max_chars)


def _container(value: Any, limits: Limits, depth: int, seen: set[int]) -> Any:
    if isinstance(value, Mapping):
        return _mapping(value, limits, depth, seen)
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return _mapping(value._asdict(), limits, depth, seen)
    if isinstance(value, (list, tuple)):
        return _sequence(value, len(value), limits, depth, seen)
    if isinstance(value, (set, frozenset)):
        try:
            items: Any = sorted(value)
        except Exception:
            items = list(value)
        return _sequence(items, len(items), limits, depth, seen)
    fields = _fields_of(value)
    if fields is not None:
        return _mapping(fields, limits, depth, seen)
    return _repr(value, limits)


def _fields_of(value: Any) -> Mapping[str, Any] | None:
    """The fields of a dataclass or pydantic model, read without deep copies."""
    try:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
        dump = getattr(type(value), "model_dump", None)  # pydantic v2
        if callable(dump):
            result = value.model_dump()
            return result if isinstance(result, Mapping) else None
        if hasattr(type(value), "__fields__") and callable(getattr(value, "dict", None)):
            result = value.dict()  # pydantic v1
            return result if isinstance(result, Mapping) else None
    except Exception:
        return None
    return None


def _mapping(value: Mapping[Any, Any], limits: Limits, depth: int, seen: set[int]) -> Any:
    out: dict[str, Any] = {}
    try:
        for key, item in itertools.islice(value.items(), limits.max_items):
            out[_key(key, limits)] = _convert(item, limits, depth, seen)
        extra = len(value) - limits.max_items
    except Exception:
        return _repr(value, limits)
    if extra > 0:
        out["…"] = f"[{extra} more keys]"
    return out


def _sequence(value: Any, size: int, limits: Limits, depth: int, seen: set[int]) -> list[Any]:
    head = itertools.islice(value, limits.max_items)
    out = [_convert(item, limits, depth, seen) for item in head]
    if size > limits.max_items:
        out.append(f"…[{size - limits.max_items} more items]")
    return out
