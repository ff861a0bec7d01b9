"""Warm ``models.get`` and ``prompts.get`` (three variables) beside a dict lookup + md5,
and how long a pinned fetch waits behind 10,000 queued assignment reports.

A local configs/prompts server in its own thread serves one config and one
prompt; the caches are warmed, then each call is timed over many runs.
Target: at most 5 us per call. Its ``POST /sessions`` takes 200 ms, so
10,000 reports are 33 minutes of work: a pinned fetch queued behind them
would never arrive; it should take one round trip.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _util import per_call_ns, report

import fallom

BODIES = {
    "/configs": {"configs": [{"key": "agent", "version": 1, "variants": [
        {"model": "gpt-4o", "weight": 50}, {"model": "claude", "weight": 50}]}]},
    "/prompts": {"prompts": [{"key": "support", "version": 1,
                              "system_prompt": "You help {{company}} customers.",
                              "user_template": "{{user}} asks: {{question}}"}]},
    "/prompt-ab-tests": {"prompt_ab_tests": []},
    "/configs/agent/version/7": {"key": "agent", "version": 7, "variants": [
        {"model": "pinned", "weight": 100}]},
}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        data = json.dumps(BODIES.get(self.path, {})).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(0.2)  # a slow /sessions
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    fallom.init(api_key="bench", configs_url=url, prompts_url=url, traces_url=url)
    variables = {"company": "Acme", "user": "Ann", "question": "Where is my order?"}
    fallom.models.get("agent", "warm")
    fallom.prompts.get("support", variables=variables)
    table = {"agent": ["gpt-4o", "claude"]}

    def baseline() -> str:
        digest = hashlib.md5(b"session-123", usedforsecurity=False).digest()
        return table["agent"][int.from_bytes(digest[:4], "big") % 2]

    base = per_call_ns(baseline, number=200_000)
    model = per_call_ns(lambda: fallom.models.get("agent", "session-123"), number=200_000)
    prompt = per_call_ns(lambda: fallom.prompts.get("support", variables=variables),
                         number=200_000)
    for n in range(10_000):  # 10,000 new sessions: 10,000 reports queued
        fallom.models.get("agent", f"new-{n}")
    began = time.perf_counter()
    assert fallom.models.get("agent", "x", version=7) == "pinned"
    pinned_ms = (time.perf_counter() - began) * 1000
    report([
        ("dict lookup + md5 (ns)", base, ""),
        ("models.get, warm (ns)", model, "target <= 5000"),
        ("prompts.get, 3 variables, warm (ns)", prompt, "target <= 5000"),
    ])
    print(f"pinned models.get behind 10,000 queued reports: {pinned_ms:.1f} ms "
          "(one round trip; /sessions answers in 200 ms)")
    fallom.shutdown()
    server.shutdown()


if __name__ == "__main__":
    main()
