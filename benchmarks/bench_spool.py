"""The on-disk spool: write and replay throughput, disk per 1,000 spans, and the
caller's cost with a spool configured (beside the same run without one).

A local server answers 503 while the spans are recorded (so every batch goes to
the spool once its retry budget is spent), then 200 (so the spool is replayed).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fallom

COUNT = 20_000
STATUS = [503]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(STATUS[0])
        self.send_header("Fallom-Ingest", "batch, gzip")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


@fallom.trace_llm(model="gpt-4o-mini")
def chat(question: str) -> str:
    return "An answer of a typical length, a sentence or two long. " * 2


def wait_until(predicate: Any, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)


def caller_ns(calls: int = 5_000, rounds: int = 7) -> float:
    """Per-call cost in chunks the queue holds, drained between chunks (outside timing)."""
    runs = []
    for _ in range(rounds):
        fallom.flush(30)
        began = time.perf_counter_ns()
        for _ in range(calls):
            chat("q")
        runs.append((time.perf_counter_ns() - began) / calls)
    return statistics.median(runs)


def one_run(url: str) -> List[float]:
    with tempfile.TemporaryDirectory() as spool:
        STATUS[0] = 503
        fallom.init(api_key="bench", traces_url=url, batch=True, spool_dir=spool,
                    export_retry_timeout=0.05, configs_url=url, prompts_url=url)
        spooled = fallom.stats()["spooled"]  # counters add up over init() calls
        began = time.perf_counter()
        for i in range(COUNT):
            chat("What is the capital of France? " + str(i))
        wait_until(lambda: fallom.stats()["spooled"] - spooled >= COUNT)
        write_rate = COUNT / (time.perf_counter() - began)
        disk = sum(os.path.getsize(os.path.join(spool, n)) for n in os.listdir(spool))
        STATUS[0] = 200
        began = time.perf_counter()
        before = fallom.stats()["replayed"]
        wait_until(lambda: fallom.stats()["replayed"] - before >= COUNT)
        replay_rate = COUNT / (time.perf_counter() - began)
        fallom.init(api_key="bench", traces_url=url, batch=True, spool_dir=spool,
                    configs_url=url, prompts_url=url)
        with_spool = caller_ns()
        fallom.flush(30)
        fallom.init(api_key="bench", traces_url=url, batch=True, configs_url=url,
                    prompts_url=url)
        without = caller_ns()
        fallom.shutdown(5)
        return [write_rate, replay_rate, disk / COUNT * 1000, with_spool, without]


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    rounds = int(os.environ.get("ROUNDS", "3"))
    rows = [one_run(url) for _ in range(rounds)]
    write, replay, disk, spooled, plain = (statistics.median(c) for c in zip(*rows))
    print(f"spool write          {write:>10,.0f} spans/s (recording and spooling {COUNT:,})")
    print(f"spool replay         {replay:>10,.0f} spans/s")
    print(f"disk per 1,000 spans {disk / 1024:>10,.0f} KiB")
    print(f"caller path, spool   {spooled:>10,.0f} ns   without {plain:,.0f} ns   "
          f"ratio {spooled / plain:.2f}")
    server.shutdown()


if __name__ == "__main__":
    main()
