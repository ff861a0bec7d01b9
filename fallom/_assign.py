"""Variant assignment, bit for bit as the other Fallom SDKs do it.

Targeting first (individual targets, then rules; first match wins), else
the md5 bucket of the session id walked through the variants' weights.
Parsing keeps what the reference tolerates and names what it cannot.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Sequence, Tuple

__all__ = ["Config", "ConfigError", "Variant", "bucket", "choose", "js_object_values",
           "parse_config", "pick_by_bucket", "target"]

_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")
OPERATORS = frozenset({"eq", "neq", "in", "nin", "contains", "startsWith", "endsWith"})


class ConfigError(ValueError):
    """A config version the assignment cannot use (it is rejected, not guessed at)."""


@dataclass(frozen=True)
class Variant:
    model: str
    weight: float


@dataclass(frozen=True)
class Config:
    key: str
    version: Any
    variants: Tuple[Variant, ...]
    targeting: Optional[Mapping[str, Any]] = None
    salt: Optional[str] = None
    warnings: Tuple[str, ...] = ()


def js_object_values(obj: Mapping[str, Any]) -> List[Any]:
    """``Object.values`` order: array-index keys ascending, then the rest as written."""
    index_keys = [k for k in obj if _ARRAY_INDEX.fullmatch(k) and int(k) < 2**32 - 1]
    others = [k for k in obj if k not in set(index_keys)]
    return [obj[k] for k in sorted(index_keys, key=int)] + [obj[k] for k in others]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_config(raw: Any) -> Config:
    """Validate one config from the wire; raise :class:`ConfigError` naming the problem."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("key"), str):
        raise ConfigError("config is not an object with a string key")
    variants_raw = raw.get("variants")
    if isinstance(variants_raw, Mapping):
        variants_raw = js_object_values(variants_raw)
    if not isinstance(variants_raw, list) or not variants_raw:
        raise ConfigError("config has no variants")
    variants, warnings = [], []
    for i, item in enumerate(variants_raw):
        if not isinstance(item, Mapping) or not isinstance(item.get("model"), str):
            raise ConfigError(f"variant {i} has no string model")
        if not _number(item.get("weight")):
            raise ConfigError(f"variant {i} has a non-numeric weight {item.get('weight')!r}")
        if item["weight"] < 0:
            warnings.append(f"variant {i} has a negative weight {item['weight']}")
        variants.append(Variant(item["model"], float(item["weight"])))
    total = sum(v.weight for v in variants)
    if abs(total - 100) > 1e-9:
        warnings.append(f"weights add up to {total:g}, not 100; the last variant takes the rest")
    targeting = raw.get("targeting")
    if targeting is not None and not isinstance(targeting, Mapping):
        raise ConfigError("targeting is not an object")
    warnings += _targeting_warnings(targeting, len(variants))
    salt = raw.get("salt")
    return Config(raw["key"], raw.get("version"), tuple(variants), targeting,
                  salt if isinstance(salt, str) and salt else None, tuple(warnings))


def _targeting_warnings(targeting: Optional[Mapping[str, Any]], count: int) -> List[str]:
    if not targeting:
        return []
    found = []
    entries = list(targeting.get("individualTargets") or []) + list(targeting.get("rules") or [])
    for entry in entries:
        index = entry.get("variantIndex") if isinstance(entry, Mapping) else None
        if not (isinstance(index, int) and 0 <= index < count):
            found.append(f"targeting variantIndex {index!r} is out of range; it is ignored")
        for condition in (entry.get("conditions") or []) if isinstance(entry, Mapping) else []:
            operator = condition.get("operator") if isinstance(condition, Mapping) else None
            if operator not in OPERATORS:
                found.append(f"unknown targeting operator {operator!r}; the condition fails")
    return found


def bucket(session_id: str, salt: Optional[str] = None) -> int:
    """0..999,999 from the first four bytes of the md5 of the session id."""
    seed = f"{salt}:{session_id}" if salt else session_id
    digest = hashlib.md5(seed.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest[:4], "big") % 1_000_000


def pick_by_bucket(weights: Sequence[float], point: int) -> int:
    """The first index whose running sum of ``weight * 10_000`` exceeds ``point``."""
    total = 0.0
    for index, weight in enumerate(weights):
        total += weight * 10_000
        if point < total:
            return index
    return len(weights) - 1


def _same(a: Any, b: Any) -> bool:
    """Strict equality as JavaScript's ``===``: no coercion between types."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _number(a) or _number(b):
        return _number(a) and _number(b) and a == b
    return type(a) is type(b) and a == b


def _holds(operator: Any, actual: Any, expected: Any) -> bool:
    if operator == "eq":
        return _same(actual, expected)
    if operator == "neq":
        return not _same(actual, expected)
    if operator in ("in", "nin"):
        found = isinstance(expected, list) and any(_same(actual, e) for e in expected)
        return found if operator == "in" else isinstance(expected, list) and not found
    if isinstance(actual, str) and isinstance(expected, str):
        if operator == "contains":
            return expected in actual
        if operator == "startsWith":
            return actual.startswith(expected)
        if operator == "endsWith":
            return actual.endswith(expected)
    return False


_ABSENT = object()


def _field(name: Any, customer_id: Optional[str], context: Mapping[str, Any]) -> Any:
    if name == "customerId":
        return customer_id if customer_id is not None else _ABSENT
    return context.get(name, _ABSENT) if isinstance(name, str) else _ABSENT


def target(targeting: Optional[Mapping[str, Any]], count: int, customer_id: Optional[str],
           context: Mapping[str, Any]) -> Optional[int]:
    """The variant index targeting picks, or None to let the bucket decide."""
    if not targeting or not targeting.get("enabled"):
        return None
    for entry in targeting.get("individualTargets") or []:
        value = _field(entry.get("field"), customer_id, context)
        index = entry.get("variantIndex")
        if value is not _ABSENT and _same(value, entry.get("value")) and _valid(index, count):
            return int(index)
    for rule in targeting.get("rules") or []:
        conditions = rule.get("conditions") or []
        index = rule.get("variantIndex")
        if conditions and _valid(index, count) and all(
                _condition(c, customer_id, context) for c in conditions):
            return int(index)
    return None


def _valid(index: Any, count: int) -> bool:
    return isinstance(index, int) and not isinstance(index, bool) and 0 <= index < count


def _condition(condition: Any, customer_id: Optional[str], context: Mapping[str, Any]) -> bool:
    if not isinstance(condition, Mapping):
        return False
    value = _field(condition.get("field"), customer_id, context)
    return value is not _ABSENT and _holds(condition.get("operator"), value,
                                           condition.get("value"))


def choose(config: Config, session_id: str, customer_id: Optional[str] = None,
           context: Optional[Mapping[str, Any]] = None) -> Variant:
    """The variant for this session: targeting, else the weighted bucket."""
    index = target(config.targeting, len(config.variants), customer_id, context or {})
    if index is None:
        index = pick_by_bucket([v.weight for v in config.variants],
                               bucket(session_id, config.salt))
    return config.variants[index]

