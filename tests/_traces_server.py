"""A real local traces endpoint that can be told to fail, request by request."""

from __future__ import annotations

import collections
import gzip
import json
import re
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

    def __init__(self, ingest: Optional[str] = "batch, gzip", strict: bool = False) -> None:
        self.ingest = ingest  # the Fallom-Ingest header of its replies; None: a cloud-like server
        self.strict = strict  # refuse with 400 anything but one bare v2 record (see _reference)
        self.refused: List[str] = []
        self.records: List[Dict[str, Any]] = []
        self.requests: List[Dict[str, Any]] = []
        self.script: Deque[Action] = collections.deque()
        self.default: Optional[Action] = None
        self.cond = threading.Condition()
        self.released = threading.Event()
        self.in_flight = 0  # requests received and not answered yet (a "hang" stays in)
        self.peak_in_flight = 0  # the most there ever were at once
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
        """Answer as scripted, counting the request in flight until it is answered."""
        with self.cond:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            self._answer(handler)
        finally:
            with self.cond:
                self.in_flight -= 1
                self.cond.notify_all()

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
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
        if action and action[0] == "bad-chunked":  # a reply no HTTP client can read
            handler.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
            handler.close_connection = True
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
        if self.strict:
            problem = check_reference_request(dict(handler.headers), raw)
            if problem is not None:
                with self.cond:
                    self.refused.append(problem)
                    self.cond.notify_all()
                self._reply(handler, 400, {})
                return
        body = gzip.decompress(raw) if handler.headers.get("Content-Encoding") == "gzip" else raw
        payload = json.loads(body)
        batch = payload["traces"] if isinstance(payload, dict) and "traces" in payload else [payload]
        with self.cond:
            self.records.extend(batch)
            self.cond.notify_all()
        self._reply(handler, 200, {})

    def _reply(self, handler: BaseHTTPRequestHandler, status: int,
               headers: Dict[str, str]) -> None:
        if self.ingest and "Fallom-Ingest" not in headers:
            headers = {**headers, "Fallom-Ingest": self.ingest}
        send_json(handler, status, {}, headers)


# -- the Fallom cloud's contract, as the published SDKs speak it (docs/design.md §3) ---------
_REQUIRED = {"config_key": str, "session_id": str, "trace_id": str, "span_id": str,
             "name": str, "start_time": str, "end_time": str, "duration_ms": int,
             "status": str}
_OPTIONAL = {"customer_id": str, "parent_span_id": str, "kind": str, "model": str,
             "error_message": str, "time_to_first_token_ms": int, "is_streaming": bool,
             "metadata": dict, "tags": list, "attributes": dict, "prompt_key": str,
             "prompt_version": int, "prompt_ab_test_key": str, "prompt_variant_index": int}
_HEX = {"trace_id": 32, "span_id": 16, "parent_span_id": 16}
_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def check_reference_request(headers: Dict[str, str], raw: bytes) -> Optional[str]:
    """Why a reference-shaped backend would refuse this request, or None."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if "content-encoding" in lowered:
        return f"Content-Encoding {lowered['content-encoding']!r}"
    if lowered.get("content-type") != "application/json":
        return f"Content-Type {lowered.get('content-type')!r}"
    if not lowered.get("authorization", "").startswith("Bearer "):
        return "no bearer key"
    try:
        record = json.loads(raw)
    except ValueError:
        return "not JSON"
    return check_reference_record(record)


def check_reference_record(record: Any) -> Optional[str]:
    """Why this is not a TraceData record as the published SDKs send it, or None."""
    if not isinstance(record, dict):
        return "not one record object"
    for key, kind in _REQUIRED.items():
        value = record.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
            return f"{key} missing or not {kind.__name__}"
        if kind is str and not value:
            return f"{key} empty"
    for key, value in record.items():
        if key in _REQUIRED:
            continue
        if key not in _OPTIONAL:
            return f"unknown field {key}"
        kind = _OPTIONAL[key]
        if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
            return f"{key} is not {kind.__name__}"
    for key, size in _HEX.items():
        if key in record and not re.fullmatch(f"[0-9a-f]{{{size}}}", record[key]):
            return f"{key} is not {size} lowercase hex"
    for key in ("start_time", "end_time"):
        if not _ISO.fullmatch(record[key]):
            return f"{key} is not ISO 8601"
    if record["status"] not in ("OK", "ERROR"):
        return "status is not OK/ERROR"
    if not all(isinstance(t, str) for t in record.get("tags", [])):
        return "tags are not strings"
    attributes = record.get("attributes", {})
    if attributes.get("fallom.sdk_version") != "2":
        return "fallom.sdk_version is not '2'"
    if not isinstance(attributes.get("fallom.method"), str):
        return "fallom.method missing"
    for key, value in attributes.items():
        if key.startswith("fallom.raw."):
            if not isinstance(value, str):
                return f"{key} is not a JSON string"
            try:
                json.loads(value)
            except ValueError:
                return f"{key} is not valid JSON"
    return None


def plain_body(request: Dict[str, Any]) -> bytes:
    """A recorded request's body, decompressed when it was sent with gzip."""
    raw: bytes = request["body"]
    return gzip.decompress(raw) if request["headers"].get("Content-Encoding") == "gzip" else raw
