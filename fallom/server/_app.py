"""The HTTP side of ``fallom serve``: every route of DESIGN §3, plus a read API."""

from __future__ import annotations

import gzip
import hmac
import ipaddress
import json
import re
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

from ._catalog import Catalog
from ._store import Store

__all__ = ["FallomServer", "serve", "validate_record"]

MAX_BODY = 16 * 1024 * 1024
INGEST_HEADER = "Fallom-Ingest"
_HEX32, _HEX16 = re.compile(r"[0-9a-f]{32}"), re.compile(r"[0-9a-f]{16}")
_PINNED = re.compile(r"/(configs|prompts)/([^/]+)/version/(\d+)")


def validate_record(record: Any) -> Optional[str]:
    """Why ``record`` cannot be stored, or None when it can."""
    if not isinstance(record, dict):
        return "not an object"
    if not isinstance(record.get("trace_id"), str) or not _HEX32.fullmatch(record["trace_id"]):
        return "trace_id must be 32 lowercase hex characters"
    if not isinstance(record.get("span_id"), str) or not _HEX16.fullmatch(record["span_id"]):
        return "span_id must be 16 lowercase hex characters"
    parent = record.get("parent_span_id")
    if parent is not None and (not isinstance(parent, str) or not _HEX16.fullmatch(parent)):
        return "parent_span_id must be 16 lowercase hex characters"
    if not isinstance(record.get("name"), str) or not record["name"]:
        return "name must be a non-empty string"
    if record.get("status") not in (None, "OK", "ERROR"):
        return "status must be OK or ERROR"
    for field in ("duration_ms", "time_to_first_token_ms"):
        value = record.get(field)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            return f"{field} must be a number"
    for field in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = record.get(field)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            return f"{field} must be an integer"
    return None


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class FallomServer:
    """A running server; ``url``, ``close()``. Binds at construction."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 8787, db: str,
                 config: Optional[str] = None, api_keys: Sequence[str] = (),
                 max_body: int = MAX_BODY) -> None:
        if not api_keys and not _is_loopback(host):
            raise ValueError(f"refusing to listen on {host} without --api-key: with no key "
                             "configured any key is accepted, which is only safe on loopback")
        self.api_keys = tuple(api_keys)
        self.max_body = max_body
        self.store = Store(db)
        self.catalog = Catalog(config, self.store)
        handler = _handler_for(self)
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://{host}:{port}"

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def start(self) -> FallomServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def authorized(self, header: Optional[str]) -> bool:
        if not header or not header.startswith("Bearer ") or not header[7:].strip():
            return False
        key = header[7:].strip()
        if not self.api_keys:
            return True
        return any(hmac.compare_digest(key, known) for known in self.api_keys)


def serve(**kwargs: Any) -> FallomServer:
    """Start a server in a background thread (for tests and embedding)."""
    return FallomServer(**kwargs).start()


def _handler_for(server: FallomServer) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        server_version = "fallom-serve"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self._authorized():
                self._reply(*_get(server, self.path))

        def do_POST(self) -> None:
            if not self._authorized():
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > server.max_body:
                self.close_connection = True
                self._reply(413, {"error": f"body over {server.max_body} bytes"})
                return
            raw = self.rfile.read(length)
            self._reply(*_post(server, urlsplit(self.path).path, raw,
                               self.headers.get("Content-Encoding")))

        def _authorized(self) -> bool:
            if server.authorized(self.headers.get("Authorization")):
                return True
            length = int(self.headers.get("Content-Length") or 0)
            if length and length <= server.max_body:
                self.rfile.read(length)
            self._reply(401, {"error": "missing or wrong API key"})
            return False

        def _reply(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if urlsplit(self.path).path == "/v1/traces":
                self.send_header(INGEST_HEADER, "batch, gzip")  # what this server takes
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _decode(raw: bytes, encoding: Optional[str], limit: int) -> Any:
    if encoding is not None and encoding.strip().lower() in ("gzip", "x-gzip"):
        decompressor = zlib.decompressobj(31)
        raw = decompressor.decompress(raw, limit + 1)
        if len(raw) > limit:
            raise OverflowError
    return json.loads(raw)


def _post(server: FallomServer, path: str, raw: bytes,
          encoding: Optional[str]) -> Tuple[int, Any]:
    try:
        body = _decode(raw, encoding, server.max_body)
    except OverflowError:
        return 413, {"error": f"decompressed body over {server.max_body} bytes"}
    except (ValueError, OSError, zlib.error, gzip.BadGzipFile) as exc:
        return 400, {"error": f"malformed body: {exc}"}
    if path == "/v1/traces":
        return _ingest(server, body)
    if path == "/sessions":
        if not isinstance(body, dict) or not body.get("session_id"):
            return 400, {"error": "expected {config_key, config_version, session_id, "
                                  "assigned_model}"}
        server.store.add_assignment(body)
        return 200, {"ok": True}
    return 404, {"error": f"no route POST {path}"}


def _ingest(server: FallomServer, body: Any) -> Tuple[int, Any]:
    records = body["traces"] if isinstance(body, dict) and "traces" in body else [body]
    if not isinstance(records, list):
        return 400, {"error": "traces must be a list"}
    valid: List[Dict[str, Any]] = []
    errors = []
    for index, record in enumerate(records):
        reason = validate_record(record)
        if reason is None:
            valid.append(record)
        else:
            errors.append({"index": index, "reason": reason})
    if not valid:
        return 400, {"error": "no valid record", "rejected": len(errors), "errors": errors}
    stored = server.store.add_spans(valid)
    return 200, {"accepted": len(valid), "stored": stored, "rejected": len(errors),
                 "errors": errors}


def _get(server: FallomServer, target: str) -> Tuple[int, Any]:
    parts = urlsplit(target)
    path, query = parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}
    loaded = server.catalog.current()
    if path == "/configs":
        return 200, {"configs": list(loaded.configs.values())}
    if path == "/prompts":
        return 200, {"prompts": list(loaded.prompts.values())}
    if path == "/prompt-ab-tests":
        return 200, {"prompt_ab_tests": list(loaded.ab_tests.values())}
    pinned = _PINNED.fullmatch(path)
    if pinned:
        kind = "config" if pinned.group(1) == "configs" else "prompt"
        found = server.catalog.pinned(kind, unquote(pinned.group(2)), int(pinned.group(3)))
        return (200, found) if found else (404, {"error": "no such version"})
    if path == "/api/traces":
        try:
            limit = int(query.get("limit", "50"))
        except ValueError:
            return 400, {"error": "limit must be an integer"}
        return 200, {"traces": server.store.traces(
            session_id=query.get("session_id"), customer_id=query.get("customer_id"),
            config_key=query.get("config_key"), status=query.get("status"), limit=limit)}
    if path.startswith("/api/traces/"):
        spans = server.store.trace(path.rsplit("/", 1)[1])
        if not spans:
            return 404, {"error": "no such trace"}
        return 200, {"trace_id": path.rsplit("/", 1)[1], "spans": spans}
    return 404, {"error": f"no route GET {path}"}
