"""Cost of a traced call: bare call vs fallom vs the OpenTelemetry SDK, one run.

Three figures per tool, each the median of several runs:
- caller path: the calls are timed in chunks that fit the queue, and the
  queue is drained between chunks outside the timing, so the figure is what
  the user's thread pays;
- sustained: the default batch settings with the worker running, so the
  export thread's share of the CPU (converting records) is included;
- memory held per finished record waiting in the queue.
Plus the cost before ``init`` and with tracing disabled.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
import tracemalloc
from typing import Callable, List

sys.path.insert(0, os.path.dirname(__file__))

from _util import per_call_ns, report

import fallom

CHUNK = 5_000


class NullExporter:
    def export(self, records):  # type: ignore[no-untyped-def]
        return True


def bare() -> None:
    return None


traced = fallom.trace_llm(bare)


class Bot:
    @fallom.trace_llm
    def ask(self) -> None:
        return None


bot = Bot()


def with_span() -> None:
    with fallom.span("block"):
        bare()


def chunked_ns(call: Callable[[], object], drain: Callable[[], object], chunks: int = 20,
               repeat: int = 7) -> float:
    """Median per-call cost over runs of ``chunks`` x CHUNK calls, drained between chunks."""
    runs: List[float] = []
    for _ in range(repeat):
        total = 0
        for _ in range(chunks):
            drain()
            gc.collect()
            start = time.perf_counter_ns()
            for _ in range(CHUNK):
                call()
            total += time.perf_counter_ns() - start
        runs.append(total / (chunks * CHUNK))
    return statistics.median(runs)


def otel(schedule_delay_ms: float, max_queue: int):  # type: ignore[no-untyped-def]
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Null(SpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(
        Null(), schedule_delay_millis=schedule_delay_ms, max_queue_size=max_queue,
        max_export_batch_size=min(max_queue, 512)))
    tracer = provider.get_tracer("bench")

    def call() -> None:
        with tracer.start_as_current_span("bare"):
            bare()

    return provider, tracer, call


def retained_bytes(make: Callable[[int], None], count: int = 2000) -> float:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    make(count)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    return sum(s.size_diff for s in after.compare_to(before, "filename")) / count


def main() -> None:
    base = per_call_ns(bare)
    before_init = per_call_ns(traced) - base
    fallom.init(tracing=False)
    disabled = per_call_ns(traced) - base

    fallom.init(exporters=[NullExporter()], max_queue_size=CHUNK * 2,
                max_batch_size=CHUNK * 2, batch_interval=3600)
    f_caller = chunked_ns(traced, lambda: fallom.flush(10)) - base
    f_method = chunked_ns(bot.ask, lambda: fallom.flush(10)) - base
    f_block = chunked_ns(with_span, lambda: fallom.flush(10)) - base
    fallom.init(exporters=[NullExporter()])
    f_sustained = per_call_ns(traced, number=100_000) - base

    provider, tracer, o_call = otel(3_600_000, CHUNK * 2)
    o_caller = chunked_ns(o_call, lambda: provider.force_flush(10_000)) - base
    provider.shutdown()
    provider, tracer, o_call = otel(5000, 2048)
    o_sustained = per_call_ns(o_call, number=100_000) - base
    provider.shutdown()

    @fallom.trace_llm
    def ask(question: str, temperature: float = 0.2) -> str:
        return "an answer"

    fallom.init(exporters=[NullExporter()], max_queue_size=100_000, max_batch_size=100_000,
                batch_interval=3600)

    def make_fallom(count: int) -> None:
        for _ in range(count):
            ask("what is the capital of France?", temperature=0.1)

    make_fallom(1)  # the worker starts, drains and then waits out batch_interval:
    fallom.flush(5)  # it cannot build records in the middle of the measurement
    mem_fallom = retained_bytes(make_fallom)
    fallom.shutdown(0)

    provider, tracer, _ = otel(3_600_000, 100_000)

    def make_otel(count: int) -> None:
        for _ in range(count):
            with tracer.start_as_current_span("ask") as s:
                s.set_attribute("input.question", "what is the capital of France?")
                s.set_attribute("input.temperature", 0.1)
                s.set_attribute("output", "an answer")

    mem_otel = retained_bytes(make_otel)
    provider.shutdown()
    report([
        ("bare call (ns)", base, ""),
        ("added before init (ns)", before_init, "target <= 50"),
        ("added, tracing disabled (ns)", disabled, "target <= 50"),
        ("added, caller path, fallom (ns)", f_caller, ""),
        ("added, caller path, OTel (ns)", o_caller, ""),
        ("  ratio fallom / OTel", f_caller / o_caller, "target <= 0.1"),
        ("added, caller path, @trace_llm method (ns)", f_method, ""),
        ("  ratio fallom / OTel", f_method / o_caller, "target <= 0.1"),
        ("added, caller path, with fallom.span (ns)", f_block, ""),
        ("  ratio fallom / OTel", f_block / o_caller, "target <= 0.1"),
        ("added, sustained incl. worker, fallom (ns)", f_sustained, ""),
        ("added, sustained incl. worker, OTel (ns)", o_sustained, ""),
        ("  ratio fallom / OTel", f_sustained / o_sustained, ""),
        ("bytes held per queued record, fallom", mem_fallom, "target <= 600"),
        ("bytes held per queued span, OTel", mem_otel, ""),
    ])


if __name__ == "__main__":
    main()
