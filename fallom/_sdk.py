"""``init``, ``flush``, ``shutdown`` and ``stats``: the SDK's lifecycle."""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from fallom.experiments import _stores
from fallom.experiments._remote import REPORTS
from fallom.exporters._batch import BatchProcessor
from fallom.exporters._spool import Spool
from fallom.infra import _exit
from fallom.infra._config import OTEL_EXTRA, SETTINGS, Settings, resolve_settings, settings_args
from fallom.infra._counters import merge_stats
from fallom.infra._fork import at_fork
from fallom.infra._guard import logger
from fallom.tracing import _ids, _record, _runtime
from fallom.tracing._context import CURRENT_SESSION, CURRENT_SPAN
from fallom.tracing._foreign import FOREIGN
from fallom.tracing._processor import SpanProcessor
from fallom.tracing._threads import install_thread_propagation

__all__ = ["flush", "init", "init_part", "shutdown", "stats"]

_lock = threading.RLock()
# Every processor of an earlier init(), read live: a span bound to that runtime may still
# end (and be counted as dropped for shutdown) after its processors were closed.
_retired: List[SpanProcessor] = []
_folded: Dict[str, Any] = merge_stats([])  # the oldest retired ones, beyond _KEEP_LIVE
_KEEP_LIVE = 64  # a program calling init() over and over keeps only these alive
_stats_lock = threading.Lock()


@at_fork
def _new_locks() -> None:
    global _lock, _stats_lock
    _lock, _stats_lock = threading.RLock(), threading.Lock()


def init(
    api_key: Optional[str] = None,
    traces_url: Optional[str] = None,
    configs_url: Optional[str] = None,
    prompts_url: Optional[str] = None,
    capture_content: Optional[bool] = None,
    debug: Optional[bool] = None,
    *,
    config_key: Optional[str] = None,
    tracing: Optional[bool] = None,
    sample_rate: Optional[float] = None,
    propagate_threads: Optional[bool] = None,
    redact: Optional[Callable[[Dict[str, Any]], Optional[Dict[str, Any]]]] = None,
    exporters: Optional[Sequence[Any]] = None,
    allow_insecure_http: Optional[bool] = None,
    max_queue_size: Optional[int] = None,
    max_batch_size: Optional[int] = None,
    max_batch_bytes: Optional[int] = None,
    batch: Optional[bool] = None,
    compress: Optional[bool] = None,
    export_concurrency: Optional[int] = None,
    batch_interval: Optional[float] = None,
    export_timeout: Optional[float] = None,
    shutdown_timeout: Optional[float] = None,
    capture_max_chars: Optional[int] = None,
    capture_max_items: Optional[int] = None,
    capture_max_depth: Optional[int] = None,
    cache_ttl: Optional[float] = None,
    cold_start_timeout: Optional[float] = None,
    otlp_endpoint: Optional[str] = None,
    otlp_headers: Optional[Dict[str, str]] = None,
    otel_context: Optional[bool] = None,
    openai_stream_usage: Optional[bool] = None,
    handle_signals: Optional[bool] = None,
    spool_dir: Optional[str] = None,
    spool_max_bytes: Optional[int] = None,
    export_retry_timeout: Optional[float] = None,
) -> None:
    """Configure fallom; calling it again reconfigures from scratch.

    Each setting comes from its argument, else its ``FALLOM_*`` environment
    variable, else the default (docs/configuration.md). Without an API key
    nothing is sent to Fallom (local mode) and nothing raises. The first six may
    be given by position, as fallom 0.2.x takes them.

    Args:
        (one per setting, written below from the settings' declaration)

    Raises:
        ValueError: a wrong value, naming the parameter or variable it came from.
        TypeError: an unknown keyword.
    """
    # the parameters are the settings, by name: fallom/infra/_config.py declares each once
    settings = resolve_settings(locals())
    activate, otel_parent = _otel_hooks(settings.otel_context)
    processors = tuple(_build_processors(settings))
    experiments = _stores.start(settings)  # the first config and prompt fetches start now
    with _lock, _stats_lock:  # stats() sees the old processors live or closing, never neither
        old = _runtime.swap(lambda current: current.replace(
            settings=settings, initialized=True, processors=processors, otel_parent=otel_parent,
            activate=activate, experiments=experiments))
        _retire(old.processors)
        _record.reset_warnings()
        if settings.propagate_threads:
            install_thread_propagation()
        _exit.install(shutdown, settings.handle_signals)
    _set_log_level(settings)
    # the old reports still go out, in the background, within the drain's budget
    _stores.stop(old.experiments, time.monotonic() + settings.shutdown_timeout)
    _close(old.processors, settings.shutdown_timeout)


# Python 3.13 strips a docstring's indentation when compiling, earlier ones do not
init.__doc__ = re.sub(r"^( *)\(one per setting, written below from the settings' declaration\)\n",
                      lambda found: settings_args(found.group(1)), init.__doc__ or "",
                      flags=re.M)


def init_part(**overrides: Any) -> None:
    """``init()`` again with ``overrides`` (those not None), every other setting kept:
    what 0.2.x's ``models.init`` and ``prompts.init`` do to their part of the SDK."""
    given = {name: value for name, value in overrides.items() if value is not None}
    current = _runtime.STATE
    if not current.initialized:
        init(**given)
    elif given:
        kept = {s.name: getattr(current.settings, s.name) for s in SETTINGS}
        init(**{**kept, **given})


def _build_processors(settings: Settings) -> List[SpanProcessor]:
    processors: List[SpanProcessor] = []

    def batch(exporter: Any, spool: Optional[Spool] = None) -> BatchProcessor:
        return BatchProcessor(exporter, max_queue_size=settings.max_queue_size,
                              max_batch_size=settings.max_batch_size,
                              interval=settings.batch_interval, spool=spool)

    if not settings.local_mode and settings.tracing:
        from fallom.exporters._http import HttpExporter

        spool = Spool(settings.spool_dir, settings.spool_max_bytes) \
            if settings.spool_dir else None
        processors.append(batch(HttpExporter.from_settings(settings), spool))
    if settings.debug and settings.tracing:
        from fallom.exporters._console import ConsoleProcessor

        processors.append(ConsoleProcessor())
    processors.extend(batch(exporter) for exporter in settings.exporters)
    if settings.otlp_endpoint:  # a destination the user named: sent even in local mode
        from fallom.exporters._otlp import OtlpExporter

        otlp = batch(OtlpExporter(settings.otlp_endpoint, settings.otlp_headers,
                                  settings.export_timeout))
        otlp.skips_foreign = True  # spans that came in through FallomExporter stay out
        processors.append(otlp)
    return processors


def _otel_hooks(enabled: bool) -> Tuple[Callable[[Any], Any], Optional[Callable[..., None]]]:
    """How spans become current, and how they find an OpenTelemetry parent."""
    if not enabled:
        return CURRENT_SPAN.set, None
    try:
        from fallom.tracing import _otel_context
    except ImportError as exc:
        raise ImportError(f"otel_context needs {OTEL_EXTRA}") from exc
    return _otel_context.ACTIVATE, _otel_context.REPARENT


class _UnlessTheAppLogs(logging.Filter):
    """fallom's own handler speaks only while the application has no logging set up;
    otherwise the record reaches the application's handlers, once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not logging.getLogger().handlers


def _set_log_level(settings: Settings) -> None:
    if settings.debug:
        logger.setLevel(logging.DEBUG)
        if not logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
            handler.addFilter(_UnlessTheAppLogs())
            logger.addHandler(handler)


def _retire(processors: Sequence[SpanProcessor]) -> None:
    """Keep counting ``processors`` live; fold the oldest beyond ``_KEEP_LIVE`` (under
    ``_stats_lock``)."""
    global _folded
    _retired.extend(processors)
    while len(_retired) > _KEEP_LIVE:
        oldest = _retired.pop(0)
        if hasattr(oldest, "stats"):
            _folded = merge_stats([_folded, oldest.stats()])


def _close(processors: Sequence[SpanProcessor], timeout: float) -> None:
    """Shut ``processors`` down; their counts stay in ``stats()`` throughout."""
    deadline = time.monotonic() + timeout
    interrupted = False
    for processor in processors:
        try:
            processor.shutdown(0.0 if interrupted else max(0.0, deadline - time.monotonic()))
        except KeyboardInterrupt:  # Ctrl-C: the others give up at once too; re-raised below
            interrupted = True
    if interrupted:
        raise KeyboardInterrupt


def flush(timeout: float = 5.0) -> bool:
    """Deliver what is queued now, waiting at most ``timeout``.

    Args:
        timeout: Seconds to wait, for all processors together.

    Returns:
        True when everything queued before the call was delivered in time; False when
        something was dropped, is still on its way, or waits in the spool.

    Never raises.
    """
    return _runtime.STATE.flush(timeout)


def shutdown(timeout: Optional[float] = None) -> None:
    """Deliver what is queued, then stop every thread fallom started.

    Spans ended afterwards are dropped (counted as ``shutdown``); ``init()`` starts
    again. An exit or SIGTERM runs this by itself.

    Args:
        timeout: Seconds the drain may take; None: the ``shutdown_timeout`` setting.

    Raises:
        KeyboardInterrupt: when Ctrl-C interrupted the drain (what it left is said
            on stderr first). Nothing else.
    """
    with _lock, _stats_lock:
        old = _runtime.swap(lambda current: current.replace(
            initialized=False, processors=(), experiments=None))
        _retire(old.processors)
    budget = old.settings.shutdown_timeout if timeout is None else timeout
    deadline = time.monotonic() + budget
    _stores.stop(old.experiments, deadline)  # queued A/B reports and metrics, beside the spans
    _close(old.processors, budget)
    if old.experiments is not None:
        old.experiments.fetcher.reporter.join(deadline - time.monotonic())


def reset(timeout: float = 2.0) -> None:
    """Back to the state of a fresh import: shut down, default settings, zero counters."""
    global _folded
    shutdown(timeout)
    _runtime.swap(lambda current: _runtime.Runtime())
    _exit.release_signals()
    with _stats_lock:
        _retired.clear()
        _folded = merge_stats([])
    REPORTS.clear()
    FOREIGN.clear()
    CURRENT_SESSION.set(None)  # a session set here (0.2.x's trace.set_session) ends too
    _ids.reset()
    _record.reset_warnings()


def stats() -> Dict[str, Any]:
    """What became of the spans of this process, over every ``init()``.

    Returns:
        A dict of counters: ``sent``, ``retried``, ``batches``, ``cut``, ``spooled``,
        ``replayed``, ``dropped`` (a dict by reason, every reason present), and
        ``reports`` (A/B assignment reports: ``sent``, ``dropped`` by reason).
    """
    with _stats_lock:  # live and retired processors, each counted once
        live = [*_runtime.STATE.all_processors(), *_retired]
        parts = [p.stats() for p in live]
        merged = merge_stats([_folded, *parts, FOREIGN.snapshot()])
    merged["reports"] = {"sent": REPORTS.get("sent"),
                         "dropped": {reason: REPORTS.get(f"dropped.{reason}")
                                     for reason in ("queue_full", "unreachable", "shutdown")}}
    return merged



