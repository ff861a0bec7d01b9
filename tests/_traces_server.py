"""A real local traces endpoint that can be told to fail, request by request."""

from __future__ import annotations

import collections
import gzip
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Deque, Dict, List, Optional, Tuple

from ._http import LoopbackServer, send_json

Action = Tuple[Any, ...]


class TracesServer(LoopbackServer):
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
        super().__init__()

    def on_post(self, handler: BaseHTTPRequestHandler) -> None:
        self._handle(handler)

    def then(self, *actions: Action) -> TracesServer:
        self.script.extend(actions)
        return self

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.released.set()
        super().close()

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Until ``count`` records arrived (False after ``timeout``)."""
        with self.cond:
            return self.cond.wait_for(lambda: len(self.records) >= count, timeout)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        """Until ``count`` requests arrived, whatever was answered."""
        with self.cond:
            return self.cond.wait_for(lambda: len(self.requests) >= count, timeout)

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
        send_json(handler, status, {}, headers)
