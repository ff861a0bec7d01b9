"""A real local traces endpoint that can be told to fail, request by request."""

from __future__ import annotations

import collections
import gzip
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Deque, Dict, List, Optional, Tuple

Action = Tuple[Any, ...]


class TracesServer:
    """``POST /v1/traces``; a script of actions is consumed one per request.

    Actions: ``("status", code, headers)``, ``("delay", seconds)`` (then answer
    normally), ``("hang",)`` (until ``release()``), ``("reset",)`` (read the
    body, then drop the connection without an answer).
    """

    def __init__(self) -> None:
        self.records: List[Dict[str, Any]] = []
        self.requests: List[Dict[str, Any]] = []
        self.script: Deque[Action] = collections.deque()
        self.default: Optional[Action] = None
        self.cond = threading.Condition()
        self.released = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else each small reply waits for a delayed ACK

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                server._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def then(self, *actions: Action) -> TracesServer:
        self.script.extend(actions)
        return self

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.records) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def _next_action(self) -> Optional[Action]:
        with self.cond:
            return self.script.popleft() if self.script else self.default

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        action = self._next_action()
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        with self.cond:
            self.requests.append({"path": handler.path, "headers": dict(handler.headers),
                                  "body": raw, "action": action, "at": time.monotonic()})
            self.cond.notify_all()
        if action and action[0] == "reset":
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                          struct.pack("ii", 1, 0))
            handler.close_connection = True
            handler.connection.close()
            return
        if action and action[0] == "hang":
            self.released.wait(60)
            handler.close_connection = True
            return
        if action and action[0] == "delay":
            time.sleep(action[1])
        if action and action[0] == "status":
            self._reply(handler, action[1], action[2] if len(action) > 2 else {})
            return
        body = gzip.decompress(raw) if handler.headers.get("Content-Encoding") == "gzip" else raw
        payload = json.loads(body)
        batch = payload["traces"] if isinstance(payload, dict) and "traces" in payload else [payload]
        with self.cond:
            self.records.extend(batch)
            self.cond.notify_all()
        self._reply(handler, 200, {})

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, headers: Dict[str, str]) -> None:
        body = b"{}"
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
