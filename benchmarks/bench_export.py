"""End-to-end export: throughput of ~1 KB records to a local server, CPU per span,
and the caller's p99 while the server hangs; fallom beside the OpenTelemetry SDK
(BatchSpanProcessor + OTLP/HTTP exporter) in the same run. Batch mode is what
fallom sends to a server that advertises ``Fallom-Ingest: batch, gzip`` (as
``fallom serve`` does), not gzipped here as the server is on this machine (nor
does OTel's exporter compress by default); record mode, one bare record per
request, is what it sends to the Fallom cloud, here with 0 and 20 ms of added
server latency.

The server runs in its own process, so its CPU is not counted. fallom is
measured twice, in child processes: with orjson (what ``pip install fallom``
gives on CPython) and with the standard library's ``json`` (the fallback, e.g.
on PyPy).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Iterator, List, Tuple

if os.environ.get("BENCH_ENCODER") == "json":  # a child measuring the stdlib encoder
    sys.modules["orjson"] = None  # type: ignore[assignment]

from _util import fallom_serve

import fallom

HERE = os.path.dirname(os.path.abspath(__file__))
COUNT = 100_000
PAYLOAD = {"messages": [{"role": "system", "content": "You are terse. " * 12},
                        {"role": "user", "content": "Summarise the plot of Hamlet. " * 12}],
           "temperature": 0.2}


def read(path: str) -> str:
    if not os.path.exists(path):
        return ""
    with open(path) as handle:
        return handle.read()


@contextlib.contextmanager
def sink(hang: bool = False, mode: str = "ok", delay_ms: int = 0) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        port_file = os.path.join(tmp, "port")
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "_sink.py"), port_file,
                                 "hang" if hang else mode, str(delay_ms)], stdin=subprocess.PIPE)
        while not read(port_file):
            time.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{read(port_file)}"
        finally:
            proc.kill()
            proc.wait()


@fallom.trace_llm(model="gpt-4o-mini")
def chat(messages: list, temperature: float) -> str:
    return "Hamlet, prince of Denmark, avenges his father; nearly everyone dies." * 3


def fallom_run(url: str, count: int = COUNT) -> Tuple[float, float]:
    """A service at its sustainable maximum: the producer never lets the queue pass
    5,000 records (it yields while the worker catches up), so memory stays bounded
    and the figure is the pipeline's throughput, not the size of a backlog."""
    from fallom.tracing import _runtime

    fallom.init(api_key="bench", traces_url=url)
    before = fallom.stats()  # counters are cumulative over init() calls
    queue = _runtime.STATE.processors[0]._queue  # type: ignore[attr-defined]
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(count):
        chat(PAYLOAD["messages"], temperature=0.2)
        if i % 500 == 0:
            while len(queue) > 5_000:
                time.sleep(0.0005)
    assert fallom.flush(120)
    elapsed, used = time.perf_counter() - start, time.process_time() - cpu
    stats = fallom.stats()
    fallom.shutdown(5)
    assert stats["sent"] - before["sent"] == count, stats
    assert sum(stats["dropped"].values()) == sum(before["dropped"].values()), stats
    return count / elapsed, used / count * 1e6


def child_run(url: str, encoder: str, count: int = COUNT) -> Tuple[float, float]:
    """:func:`fallom_run` in a fresh process with ``encoder`` (``json`` or ``orjson``)."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", url, str(count)], check=True, text=True,
        capture_output=True, env={**os.environ, "BENCH_ENCODER": encoder}).stdout.split()
    return float(out[0]), float(out[1])


@contextlib.contextmanager
def serve() -> Iterator[str]:
    """A real ``fallom serve`` on a temporary database."""
    with tempfile.TemporaryDirectory() as tmp, \
            fallom_serve(os.path.join(tmp, "t.db"), "--api-key", "bench") as url:
        yield url


def otel_provider(url: str, max_queue: int):  # type: ignore[no-untyped-def]
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=url + "/v1/traces"), max_queue_size=max_queue,
        max_export_batch_size=512))
    return provider


def otel_chat(tracer) -> Callable[[], None]:  # type: ignore[no-untyped-def]
    import json

    def call() -> None:
        with tracer.start_as_current_span("chat") as span:
            span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            span.set_attribute("input", json.dumps(PAYLOAD))
            span.set_attribute("output", "Hamlet, prince of Denmark, avenges his father." * 3)
    return call


def otel_run(url: str) -> Tuple[float, float]:
    provider = otel_provider(url, COUNT)
    processor = provider._active_span_processor._span_processors[0]
    queue = processor._batch_processor._queue
    call = otel_chat(provider.get_tracer("bench"))
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(COUNT):
        call()
        if i % 500 == 0:
            while len(queue) > 5_000:
                time.sleep(0.0005)
    provider.force_flush(120_000)
    elapsed, used = time.perf_counter() - start, time.process_time() - cpu
    provider.shutdown()
    return COUNT / elapsed, used / COUNT * 1e6


def p99_ns(call: Callable[[], object], n: int = 20_000) -> float:
    samples: List[int] = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        call()
        samples.append(clock() - t0)
    samples.sort()
    return float(samples[int(n * 0.99)])


def fallom_p99(url: str) -> float:
    fallom.init(api_key="bench", traces_url=url, shutdown_timeout=0.5)
    result = p99_ns(lambda: chat(PAYLOAD["messages"], temperature=0.2))
    fallom.shutdown(0.5)
    return result


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        rate, cpu = fallom_run(sys.argv[2], int(sys.argv[3]))
        print(rate, cpu)
        return
    rounds = int(os.environ.get("ROUNDS", "3"))
    rows = []
    for _ in range(rounds):
        with sink() as url:
            j_rate, j_cpu = child_run(url, "json")
            f_rate, f_cpu = child_run(url, "orjson")
            o_rate, o_cpu = otel_run(url)
            healthy = fallom_p99(url)
        with sink(hang=True) as url:
            hanging = fallom_p99(url)
        with sink(mode="record") as url:
            r0_rate, r0_cpu = fallom_run(url, 20_000)
        with sink(mode="record", delay_ms=20) as url:
            r20_rate, r20_cpu = fallom_run(url, 3_000)
        with serve() as url:
            s_rate, _ = child_run(url, "orjson", 50_000)
        rows.append((j_rate, j_cpu, f_rate, f_cpu, o_rate, o_cpu, healthy, hanging, r0_rate,
                     r0_cpu, r20_rate, r20_cpu, s_rate))
    med = [statistics.median(col) for col in zip(*rows)]
    (j_rate, j_cpu, f_rate, f_cpu, o_rate, o_cpu, healthy, hanging, r0_rate, r0_cpu, r20_rate,
     r20_cpu, s_rate) = med
    print(f"records of ~{len(str(PAYLOAD)) + 300} bytes, {COUNT} per run, median of {rounds} runs;"
          " batch mode unless said")
    print(f"{'':24}{'spans/s':>10}  {'CPU/span':>9}  CPU ratio to OTel")
    print(f"{'fallom, json':24}{j_rate:>10,.0f}  {j_cpu:>6.1f} us  {j_cpu / o_cpu:>5.2f}"
          "   target <= 0.25")
    print(f"{'fallom, orjson':24}{f_rate:>10,.0f}  {f_cpu:>6.1f} us  {f_cpu / o_cpu:>5.2f}")
    print(f"{'OTel SDK, OTLP/HTTP':24}{o_rate:>10,.0f}  {o_cpu:>6.1f} us")
    print(f"{'fallom -> fallom serve':24}{s_rate:>10,.0f}   (orjson; the server's own limit)")
    print("record mode (one bare record per request, as the Fallom cloud takes them):")
    print(f"{'  0 ms server':24}{r0_rate:>10,.0f}  {r0_cpu:>6.1f} us")
    print(f"{'  20 ms server':24}{r20_rate:>10,.0f}  {r20_cpu:>6.1f} us")
    print(f"caller p99, healthy    {healthy / 1000:>10.2f} us")
    print(f"caller p99, hanging    {hanging / 1000:>10.2f} us")
    print(f"  ratio hanging / ok   {hanging / healthy:>10.2f}   target <= 1.1")


if __name__ == "__main__":
    main()
