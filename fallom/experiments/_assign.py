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

from fallom.protocol._wire import is_number

__all__ = ["Config", "ConfigError", "Variant", "bucket", "choose", "fields_for",
           "js_object_values", "parse_config", "pick_by_bucket", "target", "weight_of"]

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


_NUMERAL = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def weight_of(value: Any) -> Optional[float]:
    """A weight both references read alike: a number, or a string of a decimal numeral."""
    if is_number(value):
        return float(value)
    if isinstance(value, str) and _NUMERAL.fullmatch(value):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def parse_config(raw: Any) -> Config:
    """Validate one config from the wire; raise :class:`ConfigError` naming the problem.

    Everything :func:`choose` reads is checked here, so a config that loads
    never fails at use: a shape the references would trip over is rejected.
    """
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
        weight = weight_of(item.get("weight"))
        if weight is None:
            raise ConfigError(f"variant {i} has a non-numeric weight {item.get('weight')!r}")
        if weight < 0:
            warnings.append(f"variant {i} has a negative weight {item['weight']}")
        variants.append(Variant(item["model"], weight))
    total = sum(v.weight for v in variants)
    if abs(total - 100) > 1e-9:
        warnings.append(f"weights add up to {total:g}, not 100; the last variant takes the rest")
    targeting = raw.get("targeting")
    if targeting is not None:
        _check_targeting(targeting)
    warnings += _targeting_warnings(targeting, len(variants))
    salt = raw.get("salt")
    return Config(raw["key"], raw.get("version"), tuple(variants), targeting,
                  salt if isinstance(salt, str) and salt else None, tuple(warnings))


def _check_targeting(targeting: Any) -> None:
    if not isinstance(targeting, Mapping):
        raise ConfigError("targeting is not an object")
    targets = targeting.get("individualTargets")
    if targets is not None and not (isinstance(targets, list) and
                                    all(isinstance(t, Mapping) for t in targets)):
        raise ConfigError("targeting.individualTargets is not a list of objects")
    rules = targeting.get("rules")
    if rules is not None and not (isinstance(rules, list) and
                                  all(isinstance(r, Mapping) for r in rules)):
        raise ConfigError("targeting.rules is not a list of objects")
    for i, rule in enumerate(rules or []):
        conditions = rule.get("conditions")
        if conditions is not None and not (isinstance(conditions, list) and
                                           all(isinstance(c, Mapping) for c in conditions)):
            raise ConfigError(f"targeting.rules[{i}].conditions is not a list of objects")


def _targeting_warnings(targeting: Optional[Mapping[str, Any]], count: int) -> List[str]:
    if not targeting:
        return []
    found = []
    entries = list(targeting.get("individualTargets") or []) + list(targeting.get("rules") or [])
    for entry in entries:
        index = entry.get("variantIndex")
        if _index(index, count) is None:
            found.append(f"targeting variantIndex {index!r} is out of range; it is ignored")
        for condition in entry.get("conditions") or []:
            if condition.get("operator") not in OPERATORS:
                found.append(f"unknown targeting operator {condition.get('operator')!r}; "
                             "the condition fails")
    return found


def _utf8(text: str) -> bytes:
    """UTF-8 as JavaScript encodes a string: a lone surrogate becomes U+FFFD."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace").encode()


def bucket(session_id: str, salt: Optional[str] = None) -> int:
    """0..999,999 from the first four bytes of the md5 of the session id."""
    seed = f"{salt}:{session_id}" if salt else session_id
    digest = hashlib.md5(_utf8(seed), usedforsecurity=False).digest()
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
    if is_number(a) or is_number(b):
        return is_number(a) and is_number(b) and a == b
    return type(a) is type(b) and a == b


def _holds(operator: Any, actual: Any, expected: Any) -> bool:
    """One condition on a present field; a type both references trip over fails it."""
    if operator == "eq":
        return _same(actual, expected)
    if operator == "neq":
        return not _same(actual, expected)
    if operator in ("in", "nin"):
        if not isinstance(expected, list):
            return False
        found = any(_same(actual, item) for item in expected)
        return found if operator == "in" else not found
    if not isinstance(expected, str):
        return False
    if operator == "contains":
        if isinstance(actual, list):  # Array.prototype.includes / list membership
            return any(_same(item, expected) for item in actual)
        return isinstance(actual, str) and expected in actual
    if operator == "startsWith":
        return isinstance(actual, str) and actual.startswith(expected)
    if operator == "endsWith":
        return isinstance(actual, str) and actual.endswith(expected)
    return False


_ABSENT: Any = object()


def fields_for(customer_id: Optional[str], context: Optional[Mapping[str, Any]]
               ) -> Mapping[str, Any]:
    """What targeting reads: ``context``, with ``customerId`` from a non-empty customer id."""
    fields = dict(context) if context else {}
    if customer_id:
        fields["customerId"] = customer_id
    return fields


def target(targeting: Optional[Mapping[str, Any]], count: int,
           fields: Mapping[str, Any]) -> Optional[int]:
    """The variant index targeting picks, or None to let the bucket decide.

    As both references: targeting is on unless ``enabled`` is exactly false;
    individual targets, then rules; the first match decides, even when its
    ``variantIndex`` is unusable (then the bucket does). A rule without
    conditions matches; a condition on an absent field fails.
    """
    if not targeting or targeting.get("enabled") is False:
        return None
    for entry in targeting.get("individualTargets") or ():
        name = entry.get("field")
        value = fields.get(name, _ABSENT) if isinstance(name, str) else _ABSENT
        wanted = entry.get("value", _ABSENT)
        if value is wanted or (value is not _ABSENT and wanted is not _ABSENT and
                               _same(value, wanted)):
            return _index(entry.get("variantIndex"), count)
    for rule in targeting.get("rules") or ():
        if all(_condition(c, fields) for c in rule.get("conditions") or ()):
            return _index(rule.get("variantIndex"), count)
    return None


def _index(index: Any, count: int) -> Optional[int]:
    """A usable variant index (an integral number in range), else None."""
    if isinstance(index, bool) or not is_number(index) or index != int(index):
        return None
    return int(index) if 0 <= index < count else None


def _condition(condition: Mapping[str, Any], fields: Mapping[str, Any]) -> bool:
    name = condition.get("field")
    value = fields.get(name, _ABSENT) if isinstance(name, str) else _ABSENT
    return value is not _ABSENT and _holds(condition.get("operator"), value,
                                           condition.get("value"))


def choose(config: Config, session_id: str, customer_id: Optional[str] = None,
           context: Optional[Mapping[str, Any]] = None) -> Variant:
    """The variant for this session: targeting, else the weighted bucket."""
    index = None
    if config.targeting:
        index = target(config.targeting, len(config.variants), fields_for(customer_id, context))
    if index is None:
        index = pick_by_bucket([v.weight for v in config.variants],
                               bucket(session_id, config.salt))
    return config.variants[index]
