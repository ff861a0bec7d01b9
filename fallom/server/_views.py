"""The read views behind the web UI: sessions, A/B experiments, prompts.

Each is one query over the spans and assignments tables, summarised here;
the page only displays what these return, so a test can check the numbers
against the raw spans of ``/api/traces/{id}``.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from fallom.protocol._wire import RecordView
from fallom.server._catalog import Catalog
from fallom.server._prices import Prices, Usage, per_model_cost, totals
from fallom.server._rollups import FIGURES, GRAINS, key_text, percentile
from fallom.server._store import Store, readable, since_key
from fallom.server._tables import chunks, index_key

__all__ = ["call_stats", "experiments", "moment", "overview", "prompts", "session", "sessions",
           "trace_totals"]


def sessions(store: Store, *, customer_id: Optional[str] = None, limit: int = 50,
             offset: int = 0, prices: Optional[Prices] = None) -> List[Dict[str, Any]]:
    """Sessions newest first: traces, customer, tokens, errors, time span and custom metrics
    of each. A session with metrics and no trace is listed too, dated by its metrics.

    A trace outside any session has its trace id as session id (docs/design.md §3.3);
    those are left out here. Tokens are null when no span counted any; input and output
    tokens and cost are of the LLM calls (cost null when no call's model has a price).
    """
    return _sessions(store, prices or Prices(), customer_id=customer_id, limit=limit,
                     offset=offset)


def session(store: Store, session_id: str,
            prices: Optional[Prices] = None) -> Optional[Dict[str, Any]]:
    """One session as :func:`sessions` lists it, with ``totals`` and ``turns`` (the
    conversation: its first 200 traces, oldest first, each with its LLM calls); None when
    nothing has it."""
    prices = prices or Prices()
    found = _sessions(store, prices, session_id=session_id, limit=1, offset=0)
    if not found:
        return None
    listed = store.traces(session_id=session_id, oldest_first=True, limit=_TURNS + 1)
    calls = store.query(f"SELECT model, record FROM spans WHERE {_LLM_OF} AND session_id = :s",
                        {"s": session_id})
    return {**found[0], "totals": totals((_usage(*call) for call in calls), prices),
        "turns": _turns(store, prices, listed[:_TURNS]), "truncated": len(listed) > _TURNS}


_TURNS = 200  # traces a session's page shows as its conversation


def _turns(store: Store, prices: Prices, listed: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Each trace as a turn: its figures and its LLM calls in start order, each as
    ``/api/traces/{id}`` gives a span (with its cost where priced)."""
    by_trace: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
    for part in chunks([trace["trace_id"] for trace in listed]):
        names, among = _listed(part)
        for trace_id, record in store.query(
                f"SELECT trace_id, record FROM spans WHERE {_LLM_OF} AND trace_id IN ({among}) "
                "ORDER BY start_time, span_id", names):
            by_trace[trace_id].append(readable(json.loads(record)))
    turns = []
    for trace in listed:
        llm = by_trace.get(trace["trace_id"], [])
        turns.append({"trace_id": trace["trace_id"], "start_time": trace["start_time"],
                      "name": trace["root_name"], "status": trace["status"],
                      "duration_ms": trace["duration_ms"], "total_tokens": trace["total_tokens"],
                      "cost_usd": trace_totals(llm, prices)["cost_usd"], "llm": llm})
    return turns


def is_call(span: Dict[str, Any]) -> bool:
    """An LLM call: a span with a model, or of kind "llm"."""
    return span.get("model") is not None or span.get("kind") == "llm"


def trace_totals(spans: List[Dict[str, Any]], prices: Prices) -> Dict[str, Any]:
    """The totals of spans as ``/api/traces/{id}`` gives them; each priced LLM call gets
    its ``cost_usd`` (in place)."""
    calls = [span for span in spans if is_call(span)]
    for span in calls:
        cost = prices.cost(span.get("model"), span.get("prompt_tokens"),
                           span.get("completion_tokens"))
        if cost is not None:
            span["cost_usd"] = round(cost, 8)
    return totals((Usage(span.get("model"), span.get("prompt_tokens"),
                         span.get("completion_tokens"), span.get("total_tokens"))
                   for span in calls), prices)


# One customer's sessions: the figures of that customer's spans, then the sessions' metrics.
# SQL both engines run: sums cast to BIGINT (PostgreSQL's SUM of one is NUMERIC).
_OF_CUSTOMER = """
    SELECT session_id, MAX(customer), MAX(config), CAST(SUM(traces) AS BIGINT),
           CAST(SUM(spans) AS BIGINT), CAST(SUM(tokens) AS BIGINT),
           CAST(SUM(errors) AS BIGINT), MIN(first_start), MAX(last_start), MAX(updated)
    FROM (
        SELECT session_id, MAX(customer_id) AS customer, MAX(config_key) AS config,
               COUNT(DISTINCT trace_id) AS traces, COUNT(*) AS spans,
               SUM(total_tokens) AS tokens,
               SUM(CASE WHEN status = 'ERROR' THEN 1 ELSE 0 END) AS errors,
               MIN(start_time) AS first_start, MAX(start_time) AS last_start,
               CAST(NULL AS TEXT) AS updated
        FROM spans WHERE session_id IS NOT NULL AND session_id != trace_id
            AND customer_id = :customer GROUP BY session_id
        UNION ALL
        SELECT session_id, NULL, MAX(config_key), 0, 0, NULL, NULL, NULL, NULL, MAX(updated_at)
        FROM metrics
        WHERE session_id IN (SELECT session_id FROM spans WHERE customer_id = :customer)
        GROUP BY session_id) AS parts
    GROUP BY session_id
    ORDER BY MAX(COALESCE(last_start, updated)) DESC LIMIT :limit OFFSET :offset"""
# Every session, or one: the rows ingest and metrics keep, newest activity first.
_ALL = """
    SELECT session_id, customer_id, config_key, traces, spans, total_tokens, errors,
           first_start, last_start, metrics_updated_at
    FROM sessions WHERE {where}
    ORDER BY activity DESC NULLS LAST, session_key DESC LIMIT :limit OFFSET :offset"""


def _sessions(store: Store, prices: Prices, *, customer_id: Optional[str] = None,
              session_id: Optional[str] = None, limit: int, offset: int
              ) -> List[Dict[str, Any]]:
    args: Dict[str, Any] = {"limit": max(0, min(limit, 1000)), "offset": max(0, offset)}
    if customer_id:  # a session of metrics alone has no customer
        rows = store.query(_OF_CUSTOMER, {**args, "customer": customer_id})
    elif session_id is not None:
        rows = store.query(_ALL.format(where="session_key = :key"),
                           {**args, "key": index_key(session_id)})
    else:
        rows = store.query(_ALL.format(where="1 = 1"), args)
    metrics_of = store.metrics([r[0] for r in rows])
    spent = _session_totals(store, prices, [r[0] for r in rows])
    return [{"session_id": r[0], "customer_id": r[1], "config_key": r[2], "traces": r[3],
             "spans": r[4], "total_tokens": r[5], "errors": r[6], "first_start": r[7],
             "last_start": r[8], "metrics_updated_at": r[9],
             "metrics": metrics_of.get(r[0], {}), **spent[r[0]]} for r in rows]


_LLM_OF = "(model IS NOT NULL OR kind = 'llm')"


def _session_totals(store: Store, prices: Prices,
                    session_ids: List[str]) -> Dict[str, Dict[str, Any]]:
    """Per session: input and output tokens of its LLM calls and their cost (null: none
    priced), read off the calls' records with today's prices."""
    calls: Dict[str, List[Usage]] = {session: [] for session in session_ids}
    for part in chunks(session_ids):
        names, listed = _listed(part)
        for session, model, record in store.query(
                f"SELECT session_id, model, record FROM spans WHERE {_LLM_OF} AND session_id "
                f"IN ({listed})", names):
            calls[session].append(_usage(model, record))
    return {session: {key: value for key, value in totals(found, prices).items()
                      if key in ("input_tokens", "output_tokens", "cost_usd")}
            for session, found in calls.items()}


def _listed(values: Sequence[str]) -> Tuple[Dict[str, str], str]:
    """Parameters for ``IN (...)`` of ``values``: their names and values, and the list."""
    names = {f"v{i}": value for i, value in enumerate(values)}
    return names, ", ".join(":" + name for name in names)


def _usage(model: Optional[str], record: str) -> Usage:
    """An LLM call's model and tokens, read off its stored record (any SDK's)."""
    return Usage(model, *RecordView(json.loads(record)).usage)


def call_stats(calls: Iterable[Tuple[Optional[float], Optional[float], Optional[int], str]]
               ) -> Dict[str, Any]:
    """LLM calls as (duration ms, ttft ms, tokens, status) -> the figures the page shows."""
    calls = list(calls)
    durations = sorted(d for d, _, _, _ in calls if d is not None)
    ttfts = [t for _, t, _, _ in calls if t is not None]
    tokens = [k for _, _, k, _ in calls if k is not None]
    errors = sum(1 for _, _, _, status in calls if status == "ERROR")
    return {"llm_calls": len(calls),
            "p50_ms": _percentile(durations, 0.50), "p95_ms": _percentile(durations, 0.95),
            "mean_ttft_ms": round(statistics.fmean(ttfts), 1) if ttfts else None,
            "tokens_per_call": round(sum(tokens) / len(calls), 1) if calls and tokens else None,
            "error_rate": round(errors / len(calls), 4) if calls else None}


def _percentile(ordered: Sequence[float], q: float) -> Optional[float]:
    """Nearest-rank percentile: a value that was measured, not an interpolation."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * q // 1))  # ceil(n * q)
    return round(float(ordered[int(rank) - 1]), 1)


_LLM = "(kind = 'llm' OR (kind IS NULL AND model IS NOT NULL))"


def experiments(store: Store, catalog: Catalog) -> Dict[str, Any]:
    """Per config: each version's variants, the sessions assigned to each (from the SDKs'
    assignment reports) and how those sessions' LLM calls went; the same per prompt A/B test
    variant and per prompt version, from the spans' prompt fields."""
    loaded = catalog.current()
    return {"configs": _config_results(store, loaded.configs),
            "prompt_tests": _prompt_results(store), "ab_tests": list(loaded.ab_tests.values())}


def _config_results(store: Store, current: Dict[str, Any]) -> List[Dict[str, Any]]:
    assigned: Dict[str, Dict[Tuple[str, str], List[str]]] = defaultdict(lambda: defaultdict(list))
    for key, version, session, model in store.query(
            "SELECT config_key, config_version, session_id, assigned_model FROM assignments"):
        assigned[key][(version, model)].append(session)
    calls_by_session: Dict[str, List[Tuple[Any, ...]]] = defaultdict(list)
    for row in store.query(f"SELECT session_id, duration_ms, ttft_ms, total_tokens, status "
                           f"FROM spans WHERE {_LLM}"):
        calls_by_session[row[0]].append(row[1:])
    history = _versions(store, "config")
    return [{"key": key, "current": current.get(key), "versions": history.get(key, []),
             "variants": [{"version": version, "variant": model, "sessions": len(members),
                           **call_stats(c for s in members for c in calls_by_session.get(s, []))}
                          for (version, model), members in _every_variant(
                              assigned[key], history.get(key, []))]}
            for key in sorted(set(assigned) | set(current))]


def _every_variant(assigned: Dict[Tuple[str, str], List[str]],
                   history: List[Dict[str, Any]]) -> List[Tuple[Tuple[str, str], List[str]]]:
    """Each (version, variant) once with its sessions: those assigned, and every variant of
    every stored version, a variant no session was assigned to with none. Versions are text
    (as assignments report them), in number order."""
    every: Dict[Tuple[str, str], List[str]] = {
        (str(version["version"]), model): [] for version in history
        for model in map(_model_of, _variants_of(version)) if model is not None}
    every.update(assigned)
    return sorted(every.items(), key=lambda item: (_version_order(item[0][0]), item[0]))


def _variants_of(version: Dict[str, Any]) -> List[Any]:
    """A version's variants: a list, or an object of them (as the SDKs read either)."""
    found = version.get("variants")
    return list(found.values()) if isinstance(found, dict) else \
        found if isinstance(found, list) else []


def _model_of(variant: Any) -> Optional[str]:
    """A variant's model: written as an object with ``model``, or as the model's name."""
    found = variant.get("model") if isinstance(variant, dict) else variant
    return found if isinstance(found, str) else None


def _version_order(version: str) -> Tuple[int, str]:
    return (int(version), "") if version.isdigit() and len(version) < 19 else (2**63, version)


def _prompt_results(store: Store) -> List[Dict[str, Any]]:
    groups: Dict[Tuple[Any, ...], List[Tuple[Any, ...]]] = defaultdict(list)
    session_sets: Dict[Tuple[Any, ...], set[str]] = defaultdict(set)
    for key, version, test, variant, *call, session in store.query(
            f"SELECT prompt_key, prompt_version, prompt_ab_test_key, prompt_variant_index, "
            f"duration_ms, ttft_ms, total_tokens, status, session_id FROM spans "
            f"WHERE prompt_key IS NOT NULL AND {_LLM}"):
        group = (test or "", key, version, variant)
        groups[group].append(tuple(call))
        session_sets[group].add(session)
    return [{"ab_test_key": test or None, "prompt_key": key, "prompt_version": version,
             "variant_index": variant, "sessions": len(session_sets[group]),
             **call_stats(groups[group])}
            for group in sorted(groups, key=_sortable)
            for test, key, version, variant in [group]]


def _sortable(group: Tuple[Any, ...]) -> Tuple[str, ...]:
    return tuple("" if part is None else f"{part:>20}" if isinstance(part, int) else str(part)
                 for part in group)


def _versions(store: Store, kind: str) -> Dict[str, List[Dict[str, Any]]]:
    """Every stored version of each ``kind`` key, oldest first, bodies as written."""
    versions: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
    for key, version, body in store.query(
            "SELECT key, version, body FROM versions WHERE kind = :kind ORDER BY key, version",
            {"kind": kind}):
        versions[key].append({"version": version, **_json(body)})
    return versions


def prompts(store: Store, catalog: Catalog) -> List[Dict[str, Any]]:
    """Every prompt key with all its versions (as stored) and which one is served now."""
    versions = _versions(store, "prompt")
    current = catalog.current().prompts
    return [{"key": key, "current_version": (current.get(key) or {}).get("version"),
             "versions": versions[key]} for key in sorted(versions)]


def _json(text: str) -> Dict[str, Any]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {"body": value}


# -- the overview ------------------------------------------------------------------------
_BUCKETS = 60  # at most this many points in a series
_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_DAY = 86400


def moment(text: Optional[str], now: datetime, name: str) -> Optional[datetime]:
    """``since`` or ``until`` as ``/api/traces`` reads them (see since_key): ISO 8601, or a
    time before ``now`` (15m, 24h, 7d); None when absent or blank.

    Raises:
        ValueError: anything else, naming ``name`` and the forms accepted.
    """
    if text is None or not text.strip():
        return None
    try:
        return datetime.fromisoformat(since_key(text, now)).replace(tzinfo=timezone.utc)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _step(since: int, until: int) -> int:
    """Seconds per point: the shortest whole minutes, hours or days that cover since..until
    (since rounded down to a step) in at most 60 points."""
    def fits(step: int) -> bool:
        return until - (since - since % step) <= step * _BUCKETS

    found = next((step for step in _STEPS if fits(step)), None)
    days = 2
    while found is None:
        found, days = (days * _DAY if fits(days * _DAY) else None), days + 1
    return found


# BIGINT: PostgreSQL's SUM of BIGINT is NUMERIC, read as ~100,000 Decimals for a week
_SUMS = ", ".join(f"CAST(SUM({name}) AS BIGINT)" for name in FIGURES)
_OVERVIEW = ("SELECT (start_s - :origin) / :step, model, config_key, " + _SUMS +
             " FROM rollups WHERE grain = :grain AND start_s >= :origin AND start_s < :until"
             " {filters} GROUP BY 1, 2, 3")


class _Figures:
    """Figures of LLM calls added up (a rollup row's), and their cost per model."""

    def __init__(self) -> None:
        self.sums = [0] * len(FIGURES)
        self.tokens: Dict[Optional[str], List[int]] = defaultdict(lambda: [0, 0])

    def add(self, model: Optional[str], figures: Sequence[int]) -> None:
        self.sums = [a + b for a, b in zip(self.sums, figures)]
        spent = self.tokens[model]
        spent[0] += figures[2]
        spent[1] += figures[3]

    def stats(self, prices: Prices) -> Dict[str, Any]:
        calls, errors, inputs, outputs, total = self.sums[:5]
        histogram = self.sums[5:]
        return {"requests": calls, "errors": errors,
                "error_rate": round(errors / calls, 4) if calls else None,
                "p50_ms": percentile(histogram, 0.50), "p95_ms": percentile(histogram, 0.95),
                "input_tokens": inputs, "output_tokens": outputs, "total_tokens": total,
                "cost_usd": per_model_cost(((model, i, o) for model, (i, o) in
                                            self.tokens.items()), prices)}


def overview(store: Store, prices: Prices, *, since: Optional[str] = None,
             until: Optional[str] = None, model: Optional[str] = None,
             config_key: Optional[str] = None,
             now: Optional[datetime] = None) -> Dict[str, Any]:
    """Requests, errors, latency percentiles, tokens and cost of the LLM calls from
    ``since`` (default 24 h ago) to ``until`` (default now): in total, over time, per model
    and per config key. Read from the rollups of the longest grain that divides a point.
    ``since`` is rounded down to a point's start, ``until`` up to the grain.

    Raises:
        ValueError: a ``since`` or ``until`` that is no time (the message names it).
    """
    now = now or datetime.now(timezone.utc)
    end = moment(until, now, "until") or now
    start = moment(since, now, "since") or end - timedelta(hours=24)
    low, high = int(start.timestamp()), max(int(start.timestamp()) + 1,
                                            math.ceil(end.timestamp()))
    step = _step(low, high)
    origin = low - low % step
    params: Dict[str, Any] = {"origin": origin, "step": step, "until": high,
                              "grain": max(g for g in GRAINS if step % g == 0)}
    filters = ""
    for column, value in (("model", model), ("config_key", config_key)):
        if value:
            filters += f" AND {column} = :{column}"
            params[column] = key_text(value)
    rows = store.query(_OVERVIEW.format(filters=filters), params)
    return _overview_of(rows, prices, origin, step, -(-(high - origin) // step))


def _overview_of(rows: List[Tuple[Any, ...]], prices: Prices, origin: int, step: int,
                 points: int) -> Dict[str, Any]:
    totals_, series = _Figures(), [_Figures() for _ in range(points)]
    by_model: Dict[str, _Figures] = defaultdict(_Figures)
    by_config: Dict[str, _Figures] = defaultdict(_Figures)
    for point, model_key, config, *sums in rows:
        model = model_key or None
        figures = [int(value or 0) for value in sums]
        for found in (totals_, series[int(point)], by_model[model_key], by_config[config]):
            found.add(model, figures)
    return {"since": _iso(origin), "until": _iso(origin + step * points), "bucket_s": step,
            "prices": bool(prices), "totals": totals_.stats(prices),
            "series": [{"start": _iso(origin + step * i), **found.stats(prices)}
                       for i, found in enumerate(series)],
            "by_model": [{"model": key or None, **found.stats(prices)}
                         for key, found in sorted(by_model.items())],
            "by_config": [{"config_key": key or None, **found.stats(prices)}
                          for key, found in sorted(by_config.items())]}


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
