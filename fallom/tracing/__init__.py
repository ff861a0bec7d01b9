"""Tracing: spans, their context, the runtime, and span-to-record.

Owns the span (``_span``), the context variables that nest spans and carry
sessions (``_context``, ``_session``), ids and clocks (``_ids``), the one
immutable runtime that ``init()`` swaps in (``_runtime``), the processor
interface spans end into (``_processor``), the decorators and blocks users
write (``_api``, ``_instrument``), context across threads (``_threads``),
suppression of fallom's own requests (``_suppress``), the result extractors'
registry (``_extract``), OpenTelemetry context (``_otel_context``) and
building a record from a finished span (``_record``). It may import
``fallom.protocol`` and ``fallom.infra``. See docs/design.md §4.
"""
