"""Ingest throughput of ``fallom serve``: 16 clients posting gzip batches of 50 spans.

The server runs as a real subprocess (``python -m fallom serve``) on a
temporary SQLite file; prints spans stored per second, median of 3 runs.
"""

from __future__ import annotations

import gzip
import json
import os
import statistics
import tempfile
import threading
import time
from typing import List

import requests
from _util import fallom_serve

CLIENTS, BATCHES, SIZE = 16, 100, 50


def run_once() -> float:
    with tempfile.TemporaryDirectory() as tmp, \
            fallom_serve(os.path.join(tmp, "t.db"), "--api-key", "k") as url:
        bodies = [[gzip.compress(json.dumps({"traces": [{
            "trace_id": f"{c * 100_000 + b + 1:032x}", "span_id": f"{c * 10**7 + b * 100 + i + 1:016x}",
            "name": "chat", "kind": "llm", "start_time": "2026-01-01T00:00:00.000000Z",
            "duration_ms": 12.5, "status": "OK", "model": "gpt-4o-mini", "total_tokens": 42,
            "input": {"messages": [{"role": "user", "content": "hello " * 40}]},
            "output": "world " * 40} for i in range(SIZE)]}).encode())
            for b in range(BATCHES)] for c in range(CLIENTS)]

        def client(c: int, failures: List[int]) -> None:
            session = requests.Session()
            for body in bodies[c]:
                response = session.post(f"{url}/v1/traces", data=body, timeout=60, headers={
                    "Authorization": "Bearer k", "Content-Encoding": "gzip"})
                if response.status_code != 200:
                    failures.append(response.status_code)

        failures: List[int] = []
        threads = [threading.Thread(target=client, args=(c, failures)) for c in range(CLIENTS)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        assert not failures, failures[:5]
        return CLIENTS * BATCHES * SIZE / elapsed


def main() -> None:
    rates = [run_once() for _ in range(3)]
    print(f"fallom serve ingest: {statistics.median(rates):,.0f} spans/s "
          f"({CLIENTS} clients, batches of {SIZE}, ~0.6 KB spans, median of 3 runs)")


if __name__ == "__main__":
    main()
