"""A sink HTTP server for benchmarks, run in its own process: reads, counts, answers.

``python _sink.py PORT_FILE [MODE [DELAY_MS]]`` writes its port to PORT_FILE.
MODE ``ok`` answers with ``Fallom-Ingest: batch, gzip`` (as ``fallom serve``),
``record`` without it (as the Fallom cloud: one bare record per request),
``hang`` never answers. DELAY_MS adds latency to every answer.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODE = sys.argv[2] if len(sys.argv) > 2 else "ok"
HANG = MODE == "hang"
DELAY = float(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.0
CHAT = json.dumps({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "Hello there!"}}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else each small reply waits for a delayed ACK

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if HANG:
            time.sleep(3600)
        if DELAY:
            time.sleep(DELAY)
        body = CHAT if self.path.endswith("/chat/completions") else b"{}"
        self.send_response(200)
        if MODE == "ok" and self.path.endswith("/v1/traces"):
            self.send_header("Fallom-Ingest", "batch, gzip")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(sys.argv[1], "w") as handle:
        handle.write(str(server.server_address[1]))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()  # until the benchmark closes our stdin


if __name__ == "__main__":
    main()
