"""The HTTP side of ``fallom serve``: every route of docs/design.md §3, plus a read API."""

from __future__ import annotations

import hmac
import io
import json
import logging
import re
import socket
import sqlite3
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

from fallom.infra._config import is_loopback_host
from fallom.server import _views as views
from fallom.server._catalog import Catalog
from fallom.server._datasets import entry_of_trace, prepare_from_traces, reply
from fallom.server._evals import prepare_run
from fallom.server._ingest import Row, prepare, prepare_metrics, storable, summarise
from fallom.server._otlp import (
    OTLP_PROTOBUF,
    ProtobufMissingError,
    from_protobuf,
    is_otlp,
    records_from_otlp,
)
from fallom.server._store import Store

__all__ = ["FallomServer", "ServeLimits", "serve"]

INGEST_HEADER = "Fallom-Ingest"
_PINNED = re.compile(r"/(configs|prompts)/([^/]+)/version/(\d{1,18})")
_TRACE = re.compile(r"/api/traces/([0-9a-f]{32})")
_SESSION = re.compile(r"/api/sessions/([^/]+)")
_DATASET = re.compile(r"/api/datasets/([^/]+)")
_RUN = re.compile(r"/api/evals/([^/]+)")
_EVAL_PAGE = re.compile(r"/evals(?:/[^/]+)?/?")  # the page of a run, as the SDKs print it
_DIGITS = re.compile(r"[0-9]+")  # str.isdigit() takes "²" too, which int() refuses
# a Host header: a name or an address, IPv6 in brackets, then perhaps a port
_HOST = re.compile(r"(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::[0-9]{1,5})?")
logger = logging.getLogger("fallom.serve")
_ASSETS = {"/": ("index.html", "text/html; charset=utf-8"),
           "/index.html": ("index.html", "text/html; charset=utf-8"),
           "/ui/app.js": ("app.js", "text/javascript; charset=utf-8"),
           "/ui/app.css": ("app.css", "text/css; charset=utf-8")}
# Nothing on the page may come from, or go to, another origin.
_PAGE_HEADERS = (("Content-Security-Policy", "default-src 'self'; base-uri 'none'; "
                  "form-action 'self'; frame-ancestors 'none'; object-src 'none'"),
                 ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
                 ("Cache-Control", "no-cache"))


def _asset_bytes(name: str) -> bytes:
    """A file of the web UI, shipped inside the package."""
    return (resources.files(__package__) / "ui" / name).read_bytes()


class ServeLimits(NamedTuple):
    """What one client may cost the server; each is a ``fallom serve`` option."""

    max_body: int = 16 * 1024 * 1024  # bytes on the wire
    max_decompressed: int = 32 * 1024 * 1024  # bytes after gzip
    max_records: int = 10_000  # records (or OTLP spans) per request
    max_values: int = 1_000_000  # JSON values per request (bounds memory while parsing)
    max_connections: int = 64  # open connections; more get a 503 at once
    idle_timeout: float = 30.0  # seconds a connection may sit without sending
    # seconds to send a request's head (and its body, without a valid key), however
    # slowly: a client trickling bytes cannot hold a connection longer
    request_timeout: float = 10.0


class _RefusedError(Exception):
    """A request the client got wrong: answered with ``status`` and ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_BUSY_BODY = b'{"error": "too many open connections"}'
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n"
         b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
         % (len(_BUSY_BODY), _BUSY_BODY))


def _loopback_name(host: Optional[str]) -> bool:
    """Whether a Host header names this machine (no header at all: not a browser)."""
    if host is None:
        return True
    match = _HOST.fullmatch(host.strip())
    return match is not None and is_loopback_host((match.group(1) or match.group(2)).lower())


class _Deadline(io.RawIOBase):
    """A connection's bytes: each read waits at most the idle timeout, and none goes past
    the deadline of the request being read, however slowly its bytes trickle in."""

    def __init__(self, sock: socket.socket, idle: float) -> None:
        super().__init__()
        self._sock, self._idle = sock, idle
        self.deadline: Optional[float] = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wait = self._idle
        if self.deadline is not None:
            wait = min(wait, self.deadline - time.monotonic())
            if wait <= 0:
                raise socket.timeout("the request took too long to arrive")
        self._sock.settimeout(wait)
        try:
            return self._sock.recv_into(buffer)
        finally:
            self._sock.settimeout(self._idle)  # what writes wait for


class _HTTPServer(ThreadingHTTPServer):
    """A thread per connection, at most ``limit`` of them: the next gets a 503 at once."""

    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 makes clients of a burst wait and retry

    def __init__(self, address: Tuple[str, int], handler: type, connections: int) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.limit = threading.BoundedSemaphore(max(1, connections))
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.limit.acquire(blocking=False):
            try:
                request.sendall(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.limit.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, socket.timeout)):
            super().handle_error(request, client_address)  # a client that left is no news


class FallomServer:
    """A ``fallom serve`` server; ``url``, ``close()``. Binds at construction.

    Args:
        host: the address to listen on (default loopback); an IPv6 one may be
            written in brackets. Anything but loopback needs ``api_keys``.
        port: the port; 0 picks a free one (read it back from :attr:`url`).
        db: the SQLite file that stores the traces, made if absent.
        config: a TOML catalog of configs, prompts and A/B tests to serve, reloaded
            when it changes; None: none.
        api_keys: the keys accepted as ``Bearer KEY``; empty: any key (loopback only).
        limits: what one client may cost; None: the defaults of :class:`ServeLimits`.

    Raises:
        ValueError: a non-loopback ``host`` without keys, a blank or unprintable key,
            or a ``config`` file that cannot be used (the message names the problem).
        OSError: the address cannot be bound (the port is taken, say).
        sqlite3.Error: ``db`` cannot be opened as a database.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 8787, db: str,
                 config: Optional[str] = None, api_keys: Sequence[str] = (),
                 limits: Optional[ServeLimits] = None) -> None:
        host = host.strip("[]")  # an IPv6 address as written in URLs
        if not api_keys and not is_loopback_host(host):
            raise ValueError(f"refusing to listen on {host} without --api-key: with no key "
                             "configured any key is accepted, which is only safe on loopback")
        if any(not key or not key.isprintable() or key != key.strip() for key in api_keys):
            raise ValueError("an API key must be printable, without spaces at either end, "
                             "and not empty")
        self.api_keys = tuple(key.encode("utf-8") for key in api_keys)
        self.limits = limits = limits or ServeLimits()
        self.store = Store(db)
        self.catalog = Catalog(config, self.store)
        self.httpd = _HTTPServer((host, port), _handler_for(self), limits.max_connections)
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def serve_forever(self) -> None:
        """Answer requests on this thread until :meth:`close` is called from another."""
        self.httpd.serve_forever()

    def start(self) -> FallomServer:
        """Answer requests on a daemon thread, so the caller goes on.

        Returns:
            This server, for ``server = FallomServer(...).start()``.
        """
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop answering, release the port and close the database.

        Waits for the serving loop to stop, so it must not be called from it, nor
        before :meth:`start` or :meth:`serve_forever` (it would wait forever).
        """
        self.httpd.shutdown()
        self.httpd.server_close()
        self.store.close()

    def host_allowed(self, host: Optional[str]) -> bool:
        """Whether a request with this ``Host`` header may be answered.

        With no key configured, only requests addressed to a loopback name: a page of
        another site whose name was made to resolve to 127.0.0.1 (DNS rebinding) sends
        its own name as Host.

        Args:
            host: the request's ``Host`` header; None when it sent none.

        Returns:
            True when keys are configured, or ``host`` names this machine.
        """
        return bool(self.api_keys) or _loopback_name(host)

    def authorized(self, header: Optional[str]) -> bool:
        """Whether an ``Authorization`` header carries an accepted key.

        Args:
            header: the header's value, ``Bearer KEY`` (the scheme in any case); None
                when absent.

        Returns:
            True for a configured key (compared in constant time), or for any key when
            none is configured; False without a bearer key.
        """
        if not header:
            return False
        scheme, _, key = header.strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return False
        if not self.api_keys:
            return True
        given = key.encode("latin-1", "replace")  # how http.server decoded the header's bytes
        return any(hmac.compare_digest(given, known) for known in self.api_keys)


def serve(**kwargs: Any) -> FallomServer:
    """Start a server in a background thread (for tests and embedding).

    Args:
        **kwargs: :class:`FallomServer`'s parameters (``db`` is required).

    Returns:
        The running server; ``close()`` it when done.

    Raises:
        ValueError, OSError, sqlite3.Error: as :class:`FallomServer` raises them.
    """
    return FallomServer(**kwargs).start()


_logged: set[str] = set()


def _log_once(exc: BaseException) -> None:
    key = f"{type(exc).__name__}: {exc}"
    if key not in _logged:
        _logged.add(key)
        logger.error("fallom serve: a request failed: %s", key, exc_info=exc)


def _storage_full(exc: Exception) -> bool:
    """SQLite could not write: a full disk or a file size limit, which may pass."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("full" in text or "i/o" in text)


def _handler_for(server: FallomServer) -> type:
    limits = server.limits

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        server_version = "fallom-serve"
        timeout = limits.idle_timeout  # a silent connection is closed after this

        def log_message(self, *args: Any) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            self.rfile.close()  # the socket's own reader, replaced by one with deadlines
            self.reader = _Deadline(self.connection, limits.idle_timeout)
            self.rfile = self.buffered = io.BufferedReader(self.reader)

        def handle_one_request(self) -> None:
            """Between requests a connection may idle; once a request starts, it has
            ``request_timeout`` to arrive."""
            self.reader.deadline = None
            try:
                started = self.buffered.peek(1)
            except OSError:  # the idle timeout, or the client left
                started = b""
            if not started:
                self.close_connection = True
                return
            self.reader.deadline = time.monotonic() + limits.request_timeout
            super().handle_one_request()

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            asset = _ASSETS.get(path) or (_ASSETS["/"] if _EVAL_PAGE.fullmatch(path) else None)
            if asset is not None and server.host_allowed(self.headers.get("Host")):
                self._asset(*asset)  # the page itself holds no data: no key needed
            else:
                self._answer(lambda: _get(server, self.path))

        def _asset(self, name: str, kind: str) -> None:
            data = _asset_bytes(name)
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            for header, value in _PAGE_HEADERS:
                self.send_header(header, value)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            self._answer(self._post)

        def _answer(self, work: Any) -> None:
            """Every request gets an HTTP answer: 4xx for the client, 5xx for us."""
            headers: Tuple[Tuple[str, str], ...] = ()
            try:
                status, payload = self._gate() or work()
            except _RefusedError as refused:
                self.close_connection = True  # what is left of the body is not read
                status, payload = refused.status, {"error": str(refused)}
            except ConnectionError:  # the client left: nobody to answer
                self.close_connection = True
                return
            except Exception as exc:
                _log_once(exc)
                status, payload = 500, {"error": f"the server failed: {type(exc).__name__}"}
                if _storage_full(exc):  # the sender keeps its spans and tries again later
                    status, headers = 503, (("Retry-After", "30"),)
                    payload = {"error": f"the server cannot store: {exc}"}
            try:
                self._reply(status, payload, headers)
            except OSError:
                self.close_connection = True

        def _gate(self) -> Optional[Tuple[int, Any]]:
            """The answer to a request refused before its body is read, if it is."""
            host = self.headers.get("Host")
            if not server.host_allowed(host):
                self.close_connection = True
                return 403, {"error": f"Host {host!r} is not a loopback name: without "
                                      "--api-key fallom serve answers only requests sent "
                                      "to localhost, 127.0.0.1 or [::1]"}
            if not server.authorized(self.headers.get("Authorization")):
                self._discard_body()  # within the request's deadline
                return 401, {"error": "missing or wrong API key"}
            self.reader.deadline = None  # a client with a key sends its body at its pace
            return None

        def _length(self) -> int:
            """The body's length; -1 for a chunked body (read by :meth:`_chunked`)."""
            coding = self.headers.get("Transfer-Encoding")
            if coding is not None:
                if coding.strip().lower() != "chunked":
                    raise _RefusedError(501, f"Transfer-Encoding {coding!r} is not supported")
                return -1
            value = self.headers.get("Content-Length")
            if value is None:
                return 0
            value = value.strip()
            if not _DIGITS.fullmatch(value):
                raise _RefusedError(400, "Content-Length must be a non-negative integer")
            if len(value) > 18 or int(value) > limits.max_body:
                raise _RefusedError(413, f"body over {limits.max_body} bytes")
            return int(value)

        def _body(self) -> bytes:
            length = self._length()
            try:
                raw = self._chunked() if length < 0 else self.rfile.read(length)
            except socket.timeout as exc:
                raise _RefusedError(408, f"the body stopped arriving before its end: {exc}"
                                    ) from None
            if len(raw) < length:
                raise _RefusedError(400, "the body ended before Content-Length")
            return raw

        def _discard_body(self) -> None:
            try:
                self._body()
            except _RefusedError:
                self.close_connection = True

        def _chunked(self) -> bytes:
            """A chunked body (as OpenTelemetry's JavaScript exporter sends), bounded."""
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise _RefusedError(400, "malformed chunked body") from None
                if size < 0 or total + size > limits.max_body:
                    raise _RefusedError(413, f"body over {limits.max_body} bytes")
                if size == 0:
                    break
                chunk = self.rfile.read(size)
                if len(chunk) < size or self.rfile.readline(1024).strip():
                    raise _RefusedError(400, "malformed chunked body")
                chunks.append(chunk)
                total += size
            for _ in range(64):  # trailer fields, then the empty line
                if not self.rfile.readline(1024).strip():
                    return b"".join(chunks)
            raise _RefusedError(400, "malformed chunked body")

        def _post(self) -> Tuple[int, Any]:
            return _post(server, urlsplit(self.path).path, self._body(),
                         self.headers.get("Content-Encoding"), self.headers.get("Content-Type"))

        def _reply(self, status: int, payload: Any,
                   headers: Sequence[Tuple[str, str]] = ()) -> None:
            if isinstance(payload, bytes):  # an OTLP protobuf reply
                data, kind = payload, OTLP_PROTOBUF
            else:
                data, kind = json.dumps(payload).encode(), "application/json"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            for name, value in headers:
                self.send_header(name, value)
            if urlsplit(self.path).path == "/v1/traces":
                self.send_header(INGEST_HEADER, "batch, gzip")  # what this server takes
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _decode(raw: bytes, encoding: Optional[str], limits: ServeLimits) -> bytes:
    """The body without its content coding; bounded however well it compresses."""
    codings = [c.strip().lower() for c in (encoding or "").split(",") if c.strip()]
    for coding in reversed(codings):
        if coding in ("gzip", "x-gzip"):
            raw = _gunzip(raw, limits.max_decompressed)
        elif coding != "identity":
            raise _RefusedError(415, f"Content-Encoding {coding!r} is not supported (use gzip)")
    return raw


def _gunzip(raw: bytes, limit: int) -> bytes:
    """Every member of a gzip body (as ``gzip.decompress`` reads it), at most ``limit``
    bytes of them."""
    out: List[bytes] = []
    size = 0
    while True:
        decompressor = zlib.decompressobj(31)
        try:
            part = decompressor.decompress(raw, limit + 1 - size)
        except zlib.error as exc:
            raise _RefusedError(400, f"malformed gzip body: {exc}") from None
        size += len(part)
        if size > limit:
            raise _RefusedError(413, f"decompressed body over {limit} bytes")
        if not decompressor.eof:
            raise _RefusedError(400, "malformed gzip body: it ends inside a member")
        out.append(part)
        raw = decompressor.unused_data
        if not raw.strip(b"\0"):  # trailing zeros pad some files: gzip reads past them
            return b"".join(out)


def _parse(raw: bytes, limits: ServeLimits) -> Any:
    # Each JSON value costs far more memory than its bytes: bound their number first.
    if raw.count(b",") >= limits.max_values:
        raise _RefusedError(413, f"over {limits.max_values} JSON values in one request; "
                            "send smaller batches")
    try:
        return json.loads(raw)
    except RecursionError:
        raise _RefusedError(400, "malformed body: nested too deeply") from None
    except ValueError as exc:
        raise _RefusedError(400, f"malformed body: {exc}") from None


def _post(server: FallomServer, path: str, raw: bytes, encoding: Optional[str],
          content_type: Optional[str]) -> Tuple[int, Any]:
    limits = server.limits
    raw = _decode(raw, encoding, limits)
    protobuf = (content_type or "").split(";")[0].strip().lower() == OTLP_PROTOBUF
    if path == "/v1/traces" and protobuf:
        try:
            body: Any = from_protobuf(raw)
        except ProtobufMissingError as exc:
            raise _RefusedError(415, str(exc)) from None
        except Exception as exc:  # the protobuf runtime's own decode errors
            raise _RefusedError(400, f"malformed OTLP protobuf: {type(exc).__name__}") from None
        status, reply = _ingest_otlp(server, body)
        return status, (b"" if status == 200 else reply)
    body = _parse(raw, limits)
    if path == "/v1/traces":
        if is_otlp(body):
            return _ingest_otlp(server, body)
        return _ingest(server, body)
    if path == "/sessions":
        return _assignment(server, body)
    if path == "/spans":
        return _metrics(server, body)
    if path == "/api/sdk-evals":
        return _eval_run(server, body)
    if path == "/api/datasets":
        return _dataset_from_traces(server, body)
    return 404, {"error": f"no route POST {path}"}


def _assignment(server: FallomServer, body: Any) -> Tuple[int, Any]:
    fields = ("config_key", "config_version", "session_id", "assigned_model")
    if not isinstance(body, dict) or not isinstance(body.get("session_id"), str) \
            or not body["session_id"]:
        return 400, {"error": "expected {config_key, config_version, session_id, "
                              "assigned_model}"}
    for field in fields:
        value = body.get(field)
        if isinstance(value, bool) or not isinstance(value, (str, int, type(None))):
            return 400, {"error": f"{field} must be a string"}
        if isinstance(value, str) and not storable(value):
            return 400, {"error": f"{field} is not valid Unicode (a lone surrogate)"}
    server.store.add_assignment(body)
    return 200, {"ok": True}


def _metrics(server: FallomServer, body: Any) -> Tuple[int, Any]:
    """Custom metrics of a session, as ``fallom`` 0.2.7's ``trace.span`` sends them."""
    metrics, reason = prepare_metrics(body)
    if metrics is None:
        return 400, {"error": reason}
    limit = server.limits.max_records
    if len(metrics.values) > limit:
        return 413, {"error": f"over {limit} metrics in one request; send fewer at a time"}
    stored = server.store.set_metrics(metrics.session_id, metrics.config_key, metrics.values)
    return 200, {"accepted": len(metrics.values), "stored": stored}


def _eval_run(server: FallomServer, body: Any) -> Tuple[int, Any]:
    """An evaluation run, as ``fallom`` 0.2.7 and the TypeScript SDK upload it."""
    run, status, reason = prepare_run(body, server.limits.max_records)
    if run is None:
        return status, {"error": reason}
    stored = server.store.add_run({"name": run.name, "description": run.description,
                                   "judge_model": run.judge_model,
                                   "dataset_size": run.dataset_size, "summary": run.summary},
                                  run.items)
    return 200, {"run_id": stored["run_id"], "url": f"/evals/{stored['run_id']}",
                 "items": stored["items"], "scores": stored["scores"]}


def _dataset_from_traces(server: FallomServer, body: Any) -> Tuple[int, Any]:
    """A new version of a dataset whose entries are the input and output of stored traces."""
    request, reason = prepare_from_traces(body)
    if request is None:
        return 400, {"error": reason}
    if request.key in server.catalog.current().datasets:
        return 409, {"error": f"dataset {request.key!r} is defined in the catalog file: edit "
                              "it there, or make this one under another key"}
    chosen = request.filters
    traces = server.store.traces(
        config_key=chosen.get("config_key"), session_id=chosen.get("session_id"),
        customer_id=chosen.get("customer_id"), since=chosen.get("since"),
        until=chosen.get("until"), limit=request.limit)
    entries = [entry for entry in (entry_of_trace(server.store.trace(t["trace_id"]))
                                   for t in reversed(traces)) if entry is not None]
    if not entries:
        return 400, {"error": f"no stored trace matches {request.filters or 'the filter'} "
                              "with a span that has both an input and an output"}
    made = {"name": request.name, "description": request.description, "source": "traces",
            "filter": {**request.filters, "limit": request.limit}, "entries": entries}
    version = server.store.version_of("dataset", request.key, made)
    return 200, reply(request.key, version, made, include_entries=False)


def _ingest(server: FallomServer, body: Any) -> Tuple[int, Any]:
    records = body["traces"] if isinstance(body, dict) and "traces" in body else [body]
    if not isinstance(records, list):
        return 400, {"error": "traces must be a list"}
    return _store(server, records, [])


def _ingest_otlp(server: FallomServer, body: Dict[str, Any]) -> Tuple[int, Any]:
    records, unreadable = records_from_otlp(body)
    status, reply = _store(server, records, unreadable)
    rejected = reply.get("rejected", 0)
    if status == 200 and rejected:  # OTLP's own way to say some spans were refused
        reply["partialSuccess"] = {"rejectedSpans": str(rejected),
                                   "errorMessage": "; ".join(e["reason"] for e in reply["errors"])}
    return status, reply


def _store(server: FallomServer, records: List[Any], unreadable: List[str]) -> Tuple[int, Any]:
    limit = server.limits.max_records
    if len(records) + len(unreadable) > limit:
        return 413, {"error": f"over {limit} records in one request; send smaller batches"}
    rows: List[Row] = []
    errors: List[Dict[str, Any]] = [{"index": None, "reason": reason} for reason in unreadable]
    for index, record in enumerate(records):
        row, reason = prepare(record)
        if row is not None:
            rows.append(row)
        else:
            errors.append({"index": index, "reason": reason})
    if not rows and errors:
        return 400, {"error": "no valid record", **summarise(errors)}
    stored = server.store.add_rows(rows)
    return 200, {"accepted": len(rows), "stored": stored, **summarise(errors)}


def _page(query: Dict[str, str]) -> Tuple[int, int]:
    limit, offset = _number(query, "limit"), _number(query, "offset")
    limit = 50 if limit is None else limit
    if not 0 <= limit <= 1000:
        raise _RefusedError(400, "limit must be an integer from 0 to 1000, offset from 0")
    return int(limit), int(offset or 0)


def _number(query: Dict[str, str], name: str) -> Optional[int]:
    text = query.get(name)
    if text is None or text == "":
        return None
    if not _DIGITS.fullmatch(text) or len(text) > 15:
        raise _RefusedError(400, f"{name} must be a non-negative integer")
    return int(text)


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
        limit, offset = _page(query)
        status = query.get("status")
        if status not in (None, "", "OK", "ERROR"):
            raise _RefusedError(400, "status must be OK or ERROR")
        try:
            traces = server.store.traces(
                session_id=query.get("session_id"), customer_id=query.get("customer_id"),
                config_key=query.get("config_key"), status=status, model=query.get("model"),
                name=query.get("name"), since=query.get("since"), search=query.get("q"),
                min_duration_ms=_number(query, "min_duration_ms"),
                min_tokens=_number(query, "min_tokens"), min_spans=_number(query, "min_spans"),
                oldest_first=query.get("order") == "asc", limit=limit, offset=offset)
        except ValueError as exc:  # the one value the store parses and may refuse: since
            raise _RefusedError(400, f"since: {exc}") from None
        return 200, {"traces": traces}
    if path == "/api/sessions":
        limit, offset = _page(query)
        return 200, {"sessions": views.sessions(server.store,
                                                customer_id=query.get("customer_id"),
                                                limit=limit, offset=offset)}
    one_session = _SESSION.fullmatch(path)
    if one_session:
        found = views.session(server.store, unquote(one_session.group(1)))
        return (200, found) if found else (404, {"error": "no such session"})
    if path == "/api/experiments":
        return 200, views.experiments(server.store, server.catalog)
    if path == "/api/prompts":
        return 200, {"prompts": views.prompts(server.store, server.catalog)}
    trace = _TRACE.fullmatch(path)
    if trace:
        spans = server.store.trace(trace.group(1))
        if not spans:
            return 404, {"error": "no such trace"}
        return 200, {"trace_id": trace.group(1), "spans": spans}
    return _get_evals(server, path, query)


def _get_evals(server: FallomServer, path: str, query: Dict[str, str]) -> Tuple[int, Any]:
    """The routes of evaluations: datasets and runs."""
    dataset = _DATASET.fullmatch(path)
    if dataset:
        return _dataset(server, unquote(dataset.group(1)), query)
    if path == "/api/evals":
        limit, offset = _page(query)
        return 200, {"runs": server.store.runs(limit=limit, offset=offset)}
    run = _RUN.fullmatch(path)
    if run:
        found = server.store.run(unquote(run.group(1)))
        return (200, found) if found else (404, {"error": "no such evaluation run"})
    return 404, {"error": f"no route GET {path}"}


def _dataset(server: FallomServer, key: str, query: Dict[str, str]) -> Tuple[int, Any]:
    """One version of a dataset (the latest unless ``version``), as the SDKs read it."""
    version = _number(query, "version")
    if version is None:
        found = server.store.latest_version("dataset", key)
    else:
        body = server.store.version("dataset", key, version)
        found = None if body is None else (version, body)
    if found is None:
        which = "" if version is None else f" version {version}"
        return 404, {"error": f"no dataset {key!r}{which}"}
    include = query.get("include_entries", "true").strip().lower() not in ("false", "0")
    return 200, reply(key, *found, include_entries=include)
