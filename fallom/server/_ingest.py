"""What ``fallom serve`` accepts: each record checked on its own, bad ones named.

Every field the store reads is checked for its JSON type, range and
storability (SQLite integers are 64-bit, UTF-8 cannot carry a lone
surrogate, standard JSON has no NaN), so one bad record is refused with its
reason while the good ones beside it are stored.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

from fallom.protocol._wire import RecordView

__all__ = ["MAX_ID_CHARS", "Metrics", "Row", "id_reason", "json_text", "prepare",
           "prepare_metrics", "storable", "summarise"]

Row = Tuple[str, str, Optional[str], str, Optional[str], Optional[str], Optional[str],
            Optional[str], Optional[str], Optional[float], Optional[int], str, Optional[str],
            Optional[str], Optional[str], Optional[float], Optional[str], Optional[int],
            Optional[str], Optional[int]]  # in the order of Store.COLUMNS

_HEX32, _HEX16 = re.compile(r"[0-9a-f]{32}"), re.compile(r"[0-9a-f]{16}")
_STRINGS = ("session_id", "customer_id", "config_key", "start_time", "end_time", "kind",
            "model", "error_message", "prompt_key", "prompt_ab_test_key")
_INT_MAX = 2**63 - 1
_NUMBER_MAX = 1e15  # milliseconds: some 30,000 years
# Characters a config key, session id or metric name may have: each is a key of the page
# and of the metrics table, not a place for a document.
MAX_ID_CHARS = 1024
# Nesting a record, or the JSON of one of its fallom.raw.* attributes, may have: every
# reader (this server, fallom traces, the page) parses it back within the recursion limit.
MAX_DEPTH = 128


def _number_reason(field: str, value: Any) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return f"{field} must be a number"
    if (isinstance(value, float) and not math.isfinite(value)) or abs(value) > _NUMBER_MAX:
        return f"{field} must be a finite number of milliseconds"
    return None


def storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def prepare(record: Any) -> Tuple[Optional[Row], Optional[str]]:
    """The row to store for ``record``, or why it cannot be stored."""
    reason = _reason(record)
    if reason is not None:
        return None, reason
    try:
        text = json.dumps(record, allow_nan=False)
    except ValueError:
        return None, "a number is NaN or Infinity, which JSON cannot hold"
    except RecursionError:
        return None, "nested too deeply"
    view = RecordView(record)
    tokens = view.total_tokens  # a count RecordView reads is whole and below 2**53
    duration: Union[int, float, None] = record.get("duration_ms")
    return (record["span_id"], record["trace_id"], record.get("parent_span_id"), record["name"],
            record.get("session_id"), record.get("customer_id"), record.get("config_key"),
            record.get("status"), record.get("start_time"),
            None if duration is None else float(duration), tokens, text, record.get("model"),
            record.get("error_message"), record.get("kind"), view.time_to_first_token_ms,
            record.get("prompt_key"), _integer(record.get("prompt_version")),
            record.get("prompt_ab_test_key"), _integer(record.get("prompt_variant_index"))), None


def _integer(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) \
        and abs(value) <= _INT_MAX else None


def _reason(record: Any) -> Optional[str]:
    if not isinstance(record, dict):
        return "not an object"
    if not isinstance(record.get("trace_id"), str) or not _HEX32.fullmatch(record["trace_id"]):
        return "trace_id must be 32 lowercase hex characters"
    if not isinstance(record.get("span_id"), str) or not _HEX16.fullmatch(record["span_id"]):
        return "span_id must be 16 lowercase hex characters"
    parent = record.get("parent_span_id")
    if parent is not None and (not isinstance(parent, str) or not _HEX16.fullmatch(parent)):
        return "parent_span_id must be 16 lowercase hex characters"
    name = record.get("name")
    if not isinstance(name, str) or not name:
        return "name must be a non-empty string"
    if not storable(name):
        return "name is not valid Unicode (a lone surrogate)"
    for field in _STRINGS:
        value = record.get(field)
        if value is not None and not isinstance(value, str):
            return f"{field} must be a string"
        if value is not None and not storable(value):
            return f"{field} is not valid Unicode (a lone surrogate)"
    if record.get("status") not in (None, "OK", "ERROR"):
        return "status must be OK or ERROR"
    for field in ("duration_ms", "time_to_first_token_ms"):
        reason = _number_reason(field, record.get(field))
        if reason is not None:
            return reason
    for field in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = record.get(field)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or not 0 <= value <= _INT_MAX):
            return f"{field} must be an integer from 0 to 2**63-1"
    attributes = record.get("attributes")
    if attributes is not None and not isinstance(attributes, dict):
        return "attributes must be an object"
    return _depth_reason(record)


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and objects more than ``limit`` deep (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item \
            if isinstance(item, list) else ()
        if children and depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _depth_reason(record: Dict[str, Any]) -> Optional[str]:
    if _deeper_than(record, MAX_DEPTH):
        return f"nested more than {MAX_DEPTH} levels deep"
    for key, value in (record.get("attributes") or {}).items():
        if not key.startswith("fallom.raw.") or not isinstance(value, str) \
                or value.count("[") + value.count("{") <= MAX_DEPTH:  # cannot be that deep
            continue
        try:
            too_deep = _deeper_than(json.loads(value), MAX_DEPTH)
        except RecursionError:
            too_deep = True
        except ValueError:  # not JSON: kept as the text it is
            continue
        if too_deep:
            return f"attributes.{key}: JSON nested more than {MAX_DEPTH} levels deep"
    return None


class Metrics(NamedTuple):
    """A ``POST /spans`` body, checked: each value as the JSON text to store."""

    config_key: str
    session_id: str
    values: Dict[str, str]


def prepare_metrics(body: Any) -> Tuple[Optional[Metrics], Optional[str]]:
    """The metrics to store for a ``POST /spans`` body (``fallom`` 0.2.7's ``trace.span``),
    or why they cannot be: the reason names the field."""
    if not isinstance(body, dict):
        return None, "expected {config_key, session_id, data}"
    for field in ("config_key", "session_id"):
        reason = id_reason(field, body.get(field))
        if reason is not None:
            return None, reason
    data = body.get("data")
    if not isinstance(data, dict):
        return None, "data must be an object of metric names to JSON values"
    values: Dict[str, str] = {}
    for name, value in data.items():
        text, reason = json_text(f"data.{name[:40]}", value)
        reason = id_reason("data: a metric name", name) or reason
        if reason is not None:
            return None, reason
        values[name] = text
    return Metrics(body["config_key"], body["session_id"], values), None


def id_reason(field: str, value: Any) -> Optional[str]:
    """Why ``value`` cannot be a key (a name, an id): it must be a short, storable text."""
    if not isinstance(value, str) or not value:
        return f"{field} must be a non-empty string"
    if len(value) > MAX_ID_CHARS:
        return f"{field} must be at most {MAX_ID_CHARS} characters"
    if not storable(value):
        return f"{field} is not valid Unicode (a lone surrogate)"
    return None


def json_text(label: str, value: Any) -> Tuple[str, Optional[str]]:
    """``value`` as standard JSON that every reader parses back, or why it cannot be."""
    if _deeper_than(value, MAX_DEPTH):
        return "", f"{label}: nested more than {MAX_DEPTH} levels deep"
    try:
        return json.dumps(value, allow_nan=False), None
    except ValueError:
        return "", f"{label}: a number is NaN or Infinity, which JSON cannot hold"


def summarise(errors: List[Dict[str, Any]], limit: int = 25) -> Dict[str, Any]:
    """Per-record reasons for a reply: at most ``limit`` listed, then a count."""
    out: Dict[str, Any] = {"rejected": len(errors), "errors": errors[:limit]}
    if len(errors) > limit:
        out["more_errors"] = len(errors) - limit
    return out
