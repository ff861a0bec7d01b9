"""Datasets to evaluate: the catalog's ``[datasets.KEY]``, or made of stored traces.

Stored as versions (kind ``dataset``) like configs and prompts, and served on
``GET /api/datasets/{key}`` as both reference SDKs read them:
``{"dataset": {"key", "name"}, "version": {"version"}, "entries": [{"input",
"output", "systemMessage", "metadata"}]}``. ``output`` is the expected output:
``EvaluationDataset.pull`` reads it as the golden's, ``dataset_from_fallom``
as the output to judge.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

from fallom.protocol._chat import last_turn, message_text, reply_text
from fallom.server._ingest import id_reason, json_text, storable
from fallom.server._store import since_key

__all__ = ["ENTRY_FIELDS", "FromTraces", "catalog_body", "catalog_reason", "entry_of_trace",
           "key_reason", "prepare_from_traces", "reply"]

# An entry of [datasets.KEY] in the catalog, and the wire name each is served under.
ENTRY_FIELDS = {"input": "input", "expected_output": "output",
                "system_message": "systemMessage", "metadata": "metadata"}
_FILTERS = ("config_key", "session_id", "customer_id", "since", "until")
MAX_TRACES = 1000
DEFAULT_TRACES = 100


def key_reason(field: str, key: Any) -> Optional[str]:
    """Why ``key`` cannot name a dataset: 0.2.7 puts it in the URL's path unencoded."""
    reason = id_reason(field, key)
    if reason is None and "/" in key:
        return f"{field} must not contain '/' (it is a part of the URL's path)"
    return reason


def _entry_reason(entry: Any) -> Optional[str]:
    if not isinstance(entry, Mapping):
        return "must be a table"
    unknown = set(entry) - set(ENTRY_FIELDS)
    if unknown:
        return f"unknown fields {sorted(unknown)}; an entry takes {', '.join(ENTRY_FIELDS)}"
    if not isinstance(entry.get("input"), str):
        return "input must be a string"
    for field in ("expected_output", "system_message"):
        if not isinstance(entry.get(field, ""), str):
            return f"{field} must be a string"
    if not isinstance(entry.get("metadata", {}), Mapping):
        return "metadata must be a table"
    return json_text("metadata", entry.get("metadata"))[1]


def catalog_reason(entry: Mapping[str, Any]) -> Optional[str]:
    """Why a ``[datasets.KEY]`` table cannot be served; the caller names file and key."""
    unknown = set(entry) - {"name", "description", "entries"}
    if unknown:
        return f"unknown fields {sorted(unknown)}; expected name, description, entries"
    for field in ("name", "description"):
        if not isinstance(entry.get(field, ""), str):
            return f"{field} must be a string"
    entries = entry.get("entries")
    if not isinstance(entries, list) or not entries:
        return "entries must be a non-empty list of tables ([[datasets.KEY.entries]])"
    for index, item in enumerate(entries):
        reason = _entry_reason(item)
        if reason is not None:
            return f"entries[{index}]: {reason}"
    return None


def _wire(entry: Mapping[str, Any]) -> Dict[str, Any]:
    return {wire: entry.get(field) for field, wire in ENTRY_FIELDS.items()}


def catalog_body(key: str, entry: Mapping[str, Any]) -> Dict[str, Any]:
    """The version body of a checked ``[datasets.KEY]`` table."""
    return {"name": entry.get("name") or key, "description": entry.get("description"),
            "source": "catalog", "entries": [_wire(e) for e in entry["entries"]]}


class FromTraces(NamedTuple):
    """A checked ``POST /api/datasets``: the dataset to make and which traces to read."""

    key: str
    name: str
    description: Optional[str]
    filters: Dict[str, str]
    limit: int


def _filter_reason(body: Mapping[str, Any]) -> Optional[str]:
    for field in ("name", "description", *_FILTERS):
        value = body.get(field)
        if value is None:
            continue
        if field == "description":
            if not isinstance(value, str) or not storable(value):
                return "description must be a string"
            continue
        reason = id_reason(field, value)
        if reason is None and field in ("since", "until"):
            try:
                since_key(value)
            except ValueError as exc:
                reason = f"{field}: {exc}"
        if reason is not None:
            return reason
    return None


def prepare_from_traces(body: Any) -> Tuple[Optional[FromTraces], Optional[str]]:
    """The request, checked; or why it cannot be made (the reason names the field)."""
    if not isinstance(body, dict):
        return None, "expected {key, name, description, config_key, session_id, " \
                     "customer_id, since, until, limit}"
    reason = key_reason("key", body.get("key")) or _filter_reason(body)
    limit = body.get("limit", DEFAULT_TRACES)
    if reason is None and (not isinstance(limit, int) or isinstance(limit, bool)
                           or not 1 <= limit <= MAX_TRACES):
        reason = f"limit must be an integer from 1 to {MAX_TRACES} (traces)"
    if reason is not None:
        return None, reason
    filters = {field: body[field] for field in _FILTERS if body.get(field) is not None}
    return FromTraces(body["key"], body.get("name") or body["key"], body.get("description"),
                      filters, limit), None


def _input(value: Any) -> Tuple[str, Optional[str]]:
    """A span's input as (the text to evaluate, the system message): the last user turn
    of a chat request, else the input as text."""
    user, system = last_turn(value)
    return (user, system) if user is not None else (message_text(value), system)


def entry_of_trace(spans: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The entry a trace gives: the input and output of its outermost span that has both
    (the root first), with where it came from as metadata; None if no span has both."""
    ordered = sorted(spans, key=lambda s: s.get("parent_span_id") is not None)  # stable
    for span in ordered:
        if span.get("input") is None or span.get("output") is None:
            continue
        text, system = _input(span["input"])
        origin = {field: span.get(field) for field in (
            "trace_id", "span_id", "session_id", "config_key", "model", "start_time")}
        return {"input": text, "output": reply_text(span["output"]), "systemMessage": system,
                "metadata": {k: v for k, v in origin.items() if v is not None}}
    return None


def reply(key: str, version: int, body: Mapping[str, Any],
          include_entries: bool = True) -> Dict[str, Any]:
    """The answer of ``GET /api/datasets/{key}`` for one stored version."""
    entries = body.get("entries") or []
    out: Dict[str, Any] = {
        "dataset": {"key": key, "name": body.get("name") or key,
                    "description": body.get("description")},
        "version": {"version": version, "entry_count": len(entries),
                    "source": body.get("source")}}
    if include_entries:
        out["entries"] = entries
    return out
