"""The read views behind the web UI: sessions, A/B experiments, prompts.

Each is one query over the spans and assignments tables, summarised here;
the page only displays what these return, so a test can check the numbers
against the raw spans of ``/api/traces/{id}``.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from fallom.server._catalog import Catalog
from fallom.server._store import Store
from fallom.server._tables import index_key

__all__ = ["call_stats", "experiments", "prompts", "session", "sessions"]


def sessions(store: Store, *, customer_id: Optional[str] = None, limit: int = 50,
             offset: int = 0) -> List[Dict[str, Any]]:
    """Sessions newest first: traces, customer, tokens, errors, time span and custom metrics
    of each. A session with metrics and no trace is listed too, dated by its metrics.

    A trace outside any session has its trace id as session id (docs/design.md §3.3);
    those are left out here. Tokens are null when no span counted any.
    """
    return _sessions(store, customer_id=customer_id, limit=limit, offset=offset)


def session(store: Store, session_id: str) -> Optional[Dict[str, Any]]:
    """One session as :func:`sessions` lists it; None when nothing has it."""
    found = _sessions(store, session_id=session_id, limit=1, offset=0)
    return found[0] if found else None


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


def _sessions(store: Store, *, customer_id: Optional[str] = None,
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
    return [{"session_id": r[0], "customer_id": r[1], "config_key": r[2], "traces": r[3],
             "spans": r[4], "total_tokens": r[5], "errors": r[6], "first_start": r[7],
             "last_start": r[8], "metrics_updated_at": r[9],
             "metrics": metrics_of.get(r[0], {})} for r in rows]


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
                          for (version, model), members in sorted(assigned[key].items())]}
            for key in sorted(set(assigned) | set(current))]


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
