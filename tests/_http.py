"""The scaffolding every local test server shares: a threaded loopback HTTP server."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Optional


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up early
            super().handle_error(request, client_address)


class LoopbackServer:
    """Serves on 127.0.0.1 (a free port) from a daemon thread until ``close()``.

    Subclasses set their state first, then call ``super().__init__()``, and
    answer in ``on_get`` / ``on_post``.
    """

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else each small reply waits for a delayed ACK

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner.on_get(self)

            def do_POST(self) -> None:
                owner.on_post(self)

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def on_get(self, handler: BaseHTTPRequestHandler) -> None:
        send_json(handler, 405, {"error": "GET not allowed"})

    def on_post(self, handler: BaseHTTPRequestHandler) -> None:
        send_json(handler, 405, {"error": "POST not allowed"})


def send_json(handler: BaseHTTPRequestHandler, status: int, payload: Any,
              headers: Optional[Dict[str, str]] = None) -> None:
    send_bytes(handler, status, json.dumps(payload).encode(), headers)


def send_bytes(handler: BaseHTTPRequestHandler, status: int, data: bytes,
               headers: Optional[Dict[str, str]] = None) -> None:
    handler.send_response(status)
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
