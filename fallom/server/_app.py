"""The HTTP side of ``fallom serve``: every route of docs/design.md §3, plus a read API.

A Starlette application served by uvicorn on its h11 protocol, to which :class:`_Protocol`
adds what a server open to careless clients needs and uvicorn leaves out: a silent
connection is closed after ``idle_timeout``, a request's head (and its body, without a
valid key) must arrive within ``request_timeout``, and a request the parser refuses is
answered in JSON with the reason, after the Host and key checks as every other answer.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import http
import json
import logging
import os
import re
import socket
import threading
import zlib
from dataclasses import dataclass
from importlib import resources
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)
from urllib.parse import parse_qs

import h11
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle

from fallom.infra._config import is_loopback_host
from fallom.server import _views as views
from fallom.server._catalog import Catalog
from fallom.server._datasets import entry_of_trace, prepare_from_traces, reply
from fallom.server._db import Database, UnavailableError, database
from fallom.server._evals import prepare_run
from fallom.server._ingest import Row, prepare, prepare_metrics, storable, summarise
from fallom.server._otlp import (
    OTLP_PROTOBUF,
    ProtobufMissingError,
    from_protobuf,
    is_otlp,
    records_from_otlp,
)
from fallom.server._store import Store, since_key

__all__ = ["Backend", "FallomServer", "ServeLimits", "serve"]

INGEST_HEADER = "Fallom-Ingest"
RETRY_AFTER = "5"  # seconds a client waits before sending again to a database that went away
_DIGITS = re.compile(r"[0-9]+")  # str.isdigit() takes "²" too, which int() refuses
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_EVAL_PAGE = re.compile(r"/evals(?:/[^/]+)?/?")  # the page of a run, as the SDKs print it
# a Host header: a name or an address, IPv6 in brackets, then perhaps a port
_HOST = re.compile(r"(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::[0-9]{1,5})?")
logger = logging.getLogger("fallom.serve")
_HTML = ("index.html", "text/html; charset=utf-8")
_KINDS = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".svg": "image/svg+xml"}
# the web UI's files: each shipped file under ui/ at /ui/NAME, listed once at import
_ASSETS = {"/": _HTML, "/index.html": _HTML, **{
    f"/ui/{item.name}": (item.name, _KINDS[os.path.splitext(item.name)[1]])
    for item in resources.files(__package__).joinpath("ui").iterdir()
    if os.path.splitext(item.name)[1] in _KINDS}}
if "/ui/favicon.svg" in _ASSETS:  # browsers ask for /favicon.ico whatever the page says
    _ASSETS["/favicon.ico"] = _ASSETS["/ui/favicon.svg"]
_PAGES = (*_ASSETS, "/evals", "/evals/", "/evals/{run_id}", "/evals/{run_id}/")
# Nothing on the page may come from, or go to, another origin.
_PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; base-uri 'none'; "
                 "form-action 'self'; frame-ancestors 'none'; object-src 'none'",
                 "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                 "Cache-Control": "no-cache"}
_HEAD_BYTES = 65536  # a request's head, at most (http.server's limit of a line)
_BACKLOG = 128  # connections the kernel queues before the server accepts them
_GRACE_S = 5  # seconds a request being answered at shutdown gets to finish


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


@functools.cache
def _asset_bytes(name: str) -> bytes:
    """A file of the web UI, shipped inside the package."""
    return (resources.files(__package__) / "ui" / name).read_bytes()


def _loopback_name(host: Optional[str]) -> bool:
    """Whether a Host header names this machine (no header at all: not a browser)."""
    if host is None:
        return True
    match = _HOST.fullmatch(host.strip())
    return match is not None and is_loopback_host((match.group(1) or match.group(2)).lower())


class _Gate:
    """Which requests may be answered: the Host check and the keys. Small and picklable,
    for the protocol of every worker process as for the application."""

    def __init__(self, api_keys: Tuple[bytes, ...]) -> None:
        self.api_keys = api_keys

    def host_allowed(self, host: Optional[str]) -> bool:
        """See :meth:`Backend.host_allowed`."""
        return bool(self.api_keys) or _loopback_name(host)

    def authorized(self, header: Optional[str]) -> bool:
        """See :meth:`Backend.authorized`."""
        if not header:
            return False
        scheme, _, key = header.strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return False
        if not self.api_keys:
            return True
        given = key.encode("latin-1", "replace")  # header bytes are read as latin-1
        return any(hmac.compare_digest(given, known) for known in self.api_keys)

    def refusal(self, host: Optional[str], authorization: Optional[str],
                public: bool = False) -> Optional[Tuple[int, str]]:
        """The answer to a request refused for who sent it; None when it may go on."""
        if not self.host_allowed(host):
            return 403, (f"Host {host!r} is not a loopback name: without --api-key fallom "
                         "serve answers only requests sent to localhost, 127.0.0.1 or [::1]")
        if not public and not self.authorized(authorization):
            return 401, "missing or wrong API key"
        return None


class Backend:
    """What answers requests, without a socket: the store, the catalog, the limits, the
    keys, and :attr:`app`, the ASGI application. Each worker process has its own.

    Args:
        db: the database: a SQLite file path, ``sqlite:///PATH``, ``postgresql://…``
            (see :func:`fallom.server._db.database`), or one already parsed.
        config: a TOML catalog of configs, prompts and A/B tests to serve, reloaded
            when it changes; None: none.
        api_keys: the keys accepted as ``Bearer KEY``; empty: any key.
        limits: what one client may cost; None: the defaults of :class:`ServeLimits`.
        retention: seconds a trace is kept; None: every trace is kept.

    Raises:
        ValueError: a blank or unprintable key, a database URL of an unknown scheme, or a
            ``config`` file that cannot be used (the message names the problem).
        fallom.server._db.StoreError: the database cannot be used (unreachable, newer
            than this code, not a database); the message names it, never a password.
    """

    def __init__(self, *, db: Union[str, Database], config: Optional[str] = None,
                 api_keys: Sequence[str] = (), limits: Optional[ServeLimits] = None,
                 retention: Optional[float] = None) -> None:
        if any(not key or not key.isprintable() or key != key.strip() for key in api_keys):
            raise ValueError("an API key must be printable, without spaces at either end, "
                             "and not empty")
        self.api_keys = tuple(key.encode("utf-8") for key in api_keys)
        self.gate = _Gate(self.api_keys)
        self.limits = limits or ServeLimits()
        self.database = db if isinstance(db, Database) else database(db)
        self.store = Store(self.database, retention=retention)
        try:
            self.catalog = Catalog(config, self.store)
        except BaseException:
            self.store.close()
            raise
        self.app: ASGIApp = _application(self)

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
        return self.gate.host_allowed(host)

    def authorized(self, header: Optional[str]) -> bool:
        """Whether an ``Authorization`` header carries an accepted key.

        Args:
            header: the header's value, ``Bearer KEY`` (the scheme in any case); None
                when absent.

        Returns:
            True for a configured key (compared in constant time), or for any key when
            none is configured; False without a bearer key.
        """
        return self.gate.authorized(header)

    def close(self) -> None:
        """Close the database (and stop its retention)."""
        self.store.close()


class _Listener:
    """The listening socket, bound at once so that a taken port fails at construction;
    ``server_address`` as http.server's servers had it."""

    def __init__(self, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto named: asyncio turns Nagle off only on sockets that say they are TCP, and
        # with it on each small answer waits ~40 ms for the client's delayed ACK
        self.socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.socket.bind((host, port))
            self.socket.listen(_BACKLOG)
        except BaseException:
            self.socket.close()
            raise

    @property
    def server_address(self) -> Tuple[Any, ...]:
        return tuple(self.socket.getsockname())

    def server_close(self) -> None:
        self.socket.close()


class FallomServer(Backend):
    """A ``fallom serve`` server; ``url``, ``close()``. Binds at construction.

    Args:
        host: the address to listen on (default loopback); an IPv6 one may be
            written in brackets. Anything but loopback needs ``api_keys``.
        port: the port; 0 picks a free one (read it back from :attr:`url`).
        db: the database, made if absent: a SQLite file path, ``sqlite:///PATH``, or a
            ``postgresql://USER@HOST:PORT/DB`` URL (shared by any number of servers).
        config: a TOML catalog of configs, prompts and A/B tests to serve, reloaded
            when it changes; None: none.
        api_keys: the keys accepted as ``Bearer KEY``; empty: any key (loopback only).
        limits: what one client may cost; None: the defaults of :class:`ServeLimits`.
        retention: seconds a trace is kept (older ones are deleted in the background);
            None: every trace is kept.
        workers: processes answering on the port, each with its own connections to the
            database (:meth:`serve_forever` only); more than 1 needs PostgreSQL.

    Raises:
        ValueError: a non-loopback ``host`` without keys, a blank or unprintable key,
            ``workers`` above what the database allows, or a ``config`` file that
            cannot be used (the message names the problem).
        OSError: the address cannot be bound (the port is taken, say).
        fallom.server._db.StoreError: the database cannot be used.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 8787, db: Union[str, Database],
                 config: Optional[str] = None, api_keys: Sequence[str] = (),
                 limits: Optional[ServeLimits] = None, retention: Optional[float] = None,
                 workers: int = 1) -> None:
        host = host.strip("[]")  # an IPv6 address as written in URLs
        if not api_keys and not is_loopback_host(host):
            raise ValueError(f"refusing to listen on {host} without --api-key: with no key "
                             "configured any key is accepted, which is only safe on loopback")
        parsed = db if isinstance(db, Database) else database(db)
        allowed = parsed.max_workers
        if workers < 1 or (allowed is not None and workers > allowed):
            raise ValueError(f"--workers {workers}: {parsed.shown} takes at most {allowed} "
                             "(SQLite has one writer: use PostgreSQL for more)" if allowed
                             else f"--workers {workers}: must be 1 or more")
        super().__init__(db=parsed, config=config, api_keys=api_keys, limits=limits,
                         retention=retention)
        try:
            self.httpd = _Listener(host, port)
        except BaseException:
            self.store.close()
            raise
        self.workers = workers
        self._worker_settings = {"db": parsed, "config": config, "api_keys": tuple(api_keys),
                                 "limits": self.limits}
        self._server = uvicorn.Server(_Config(self.app, self.gate, self.limits))
        self._thread: Optional[threading.Thread] = None
        self._supervisor: Any = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def serve_forever(self) -> None:
        """Answer requests on this thread (and ``workers`` processes) until :meth:`close`
        is called from another thread, or SIGINT or SIGTERM arrives on the main thread."""
        if self.workers == 1:
            self._server.run(sockets=[self.httpd.socket])
            return
        import inspect

        from uvicorn import Server
        from uvicorn.supervisors import Multiprocess

        config = _Config(_Worker(self._worker_settings), self.gate, self.limits,
                         workers=self.workers)
        # older uvicorn (0.39, the last for Python 3.9) is told what each worker runs
        older = "target" in inspect.signature(Multiprocess).parameters
        run = {"target": Server(config=config).run} if older else {}
        self._supervisor = Multiprocess(config, sockets=[self.httpd.socket], **run)
        self._supervisor.run()

    def start(self) -> FallomServer:
        """Answer requests on a daemon thread, so the caller goes on.

        Returns:
            This server, for ``server = FallomServer(...).start()``.
        """
        self._thread = threading.Thread(target=self.serve_forever, daemon=True,
                                        name="fallom-serve")
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop answering, release the port and close the database.

        Requests being answered get a few seconds to finish; then the serving loop has
        stopped (it must not be called from it).
        """
        self._server.should_exit = True
        if self._supervisor is not None:
            self._supervisor.should_exit.set()
        if self._thread is not None:
            self._thread.join()
        self.httpd.server_close()
        super().close()


def serve(**kwargs: Any) -> FallomServer:
    """Start a server in a background thread (for tests and embedding).

    Args:
        **kwargs: :class:`FallomServer`'s parameters (``db`` is required).

    Returns:
        The running server; ``close()`` it when done.

    Raises:
        ValueError, OSError, fallom.server._db.StoreError: as :class:`FallomServer`
            raises them.
    """
    return FallomServer(**kwargs).start()


# -- uvicorn: its configuration, a worker's application, the protocol -----------------------
class _Config(uvicorn.Config):
    """uvicorn's settings for ``fallom serve``, with the gate and limits the protocol needs
    (picklable: uvicorn hands it to each worker process)."""

    def __init__(self, app: ASGIApp, gate: _Gate, limits: ServeLimits, workers: int = 1) -> None:
        super().__init__(
            app, http=_Protocol, ws="none", interface="asgi3",
            lifespan="on" if workers > 1 else "off", workers=workers,
            log_config=None, log_level="error", access_log=False,  # our answers say it all
            proxy_headers=False, server_header=False, headers=[("Server", "fallom-serve")],
            limit_concurrency=limits.max_connections + 1,  # it counts the one asking
            backlog=_BACKLOG, timeout_graceful_shutdown=_GRACE_S,
            h11_max_incomplete_event_size=_HEAD_BYTES)
        self.gate, self.limits = gate, limits


class _Worker:
    """The application of one of ``--workers`` processes: its own :class:`Backend`, made
    from picklable settings when uvicorn starts it there (the ASGI lifespan)."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = dict(settings)
        self.backend: Optional[Backend] = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif self.backend is not None:
            await self.backend.app(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.backend = await run_in_threadpool(lambda: Backend(**self.settings))
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.backend is not None:
                    await run_in_threadpool(self.backend.close)
                await send({"type": "lifespan.shutdown.complete"})
                return


class _Parser(h11.Connection):
    """h11's parser, keeping why it refused a request (uvicorn only says 400) and the
    bytes the request's head was read from (h11 consumes them)."""

    refused: Optional[h11.RemoteProtocolError] = None
    head = b""

    def next_event(self) -> Any:
        if self.their_state is h11.IDLE:  # what is buffered starts with the next head
            self.head = self.trailing_data[0][:_HEAD_BYTES]
        try:
            return super().next_event()
        except h11.RemoteProtocolError as exc:
            self.refused = exc
            raise


def _raw_answer(status: int, message: str) -> bytes:
    """A whole JSON answer that closes the connection, for where no request was parsed."""
    body = json.dumps({"error": message}).encode()
    head = (f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\nServer: fallom-serve\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n")
    return head.encode("latin-1") + body


def _fields(head: bytes) -> Dict[str, str]:
    """The header fields of a head the parser refused, read loosely: only to apply the
    Host and key checks before saying what is wrong with it."""
    fields = {}
    for line in head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon:
            fields[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return fields


def _explain(error: Optional[h11.RemoteProtocolError], head: bytes,
             gate: _Gate) -> Tuple[int, str]:
    """The answer to a request h11 refused, as http.server's fallom serve gave it: a body's
    framing (Content-Length, Transfer-Encoding) is judged after who sent it."""
    text = str(error or "unreadable request")
    status = error.error_status_hint if error is not None else 400
    if "Content-Length" in text or "Transfer-Encoding" in text:
        fields = _fields(head)
        refused = gate.refusal(fields.get("host"), fields.get("authorization"))
        if refused is not None:
            return refused
        if "Content-Length" in text:
            return 400, "Content-Length must be a non-negative integer"
        coding = fields.get("transfer-encoding", "")
        return 501, f"Transfer-Encoding {coding!r} is not supported"
    if "chunk" in text:
        return 400, "malformed chunked body"
    return status, f"malformed request: {text}"


class _Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with the time limits of ``fallom serve``.

    Waiting for a client (between requests, in a head, discarding an unread body) lasts
    at most ``idle_timeout`` without a byte; a request's head, and its body until a valid
    key is seen, arrives within ``request_timeout`` of its first byte however slowly its
    bytes trickle. A key's holder sends its body at its own pace (the application bounds
    each wait by ``idle_timeout``).
    """

    def __init__(self, config: uvicorn.Config, server_state: Any, app_state: Dict[str, Any],
                 _loop: Optional[asyncio.AbstractEventLoop] = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        assert isinstance(config, _Config)
        self.gate, self.limits = config.gate, config.limits
        self.conn = self._parser = _Parser(h11.SERVER, _HEAD_BYTES)
        self._deadline: Optional[asyncio.TimerHandle] = None
        self._hostless = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._waiting()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._trust()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and self._deadline is None:  # a head begins
            self._deadline = self.loop.call_later(self.limits.request_timeout, self._too_slow)
        cycle = self.cycle
        super().data_received(data)
        self._began(cycle)
        self._refuse_large_chunk()
        self._waiting()

    def on_response_complete(self) -> None:
        cycle = self.cycle
        super().on_response_complete()  # which may parse a pipelined request
        self._began(cycle)
        self._waiting()

    def _began(self, before: Optional[RequestResponseCycle]) -> None:
        """When a head was parsed: its request gets the hook that lifts the deadline, and
        loses the empty Host that :meth:`_without_host` put in."""
        if self.cycle is None or self.cycle is before:
            return
        scope = self.cycle.scope
        scope["extensions"] = {"fallom.trust": self._trust}
        if self._hostless:
            scope["headers"] = [field for field in scope["headers"] if field != (b"host", b"")]
            self._hostless = False

    def _waiting(self) -> None:
        """Arm the idle timer when the next move is the client's; between requests, no
        request deadline runs."""
        if self.transport.is_closing():
            return
        if self.conn.their_state is h11.IDLE and not self.conn.trailing_data[0]:
            self._trust()
        if self.cycle is None or self.cycle.response_complete:
            self._unset_keepalive_if_required()
            self.timeout_keep_alive_task = self.loop.call_later(
                self.limits.idle_timeout, self.timeout_keep_alive_handler)

    def _trust(self) -> None:
        """No request deadline: between requests, or the sender showed a valid key."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        self._refuse(408, "the request took too long to arrive")

    def _refuse_large_chunk(self) -> None:
        """A chunk announced larger than ``max_body`` is refused at its header, before its
        bytes are waited for (h11 keeps the size it read in its chunk reader)."""
        announced = getattr(getattr(self.conn, "_reader", None), "_bytes_in_chunk", 0)
        if self.conn.their_state is h11.SEND_BODY and announced > self.limits.max_body:
            self._refuse(413, f"body over {self.limits.max_body} bytes")

    def send_400_response(self, msg: str) -> None:
        """What uvicorn calls when h11 refuses the bytes: the reason, in our words."""
        refused = self._parser.refused
        if refused is not None and "Missing mandatory Host" in str(refused) \
                and self._without_host():
            return
        self._refuse(*_explain(refused, self._parser.head, self.gate))

    def _without_host(self) -> bool:
        """Parse again, with an empty Host, a request that came without one: HTTP/1.1 asks
        for it, but scripts leave it out and http.server's fallom serve took them (a
        request without Host is not from a browser, so it passes the Host check)."""
        given = self._parser.head
        end, first = given.find(b"\r\n\r\n"), given.find(b"\r\n")
        if end < 0 or self._hostless:
            return False
        head = given[:first + 2] + b"Host: \r\n" + given[first + 2:end + 4]
        rest = self.conn.trailing_data[0]  # what followed the head
        self.conn = self._parser = _Parser(h11.SERVER, _HEAD_BYTES)
        self.conn.receive_data(head + rest)
        self._hostless = True
        self.handle_events()
        return True

    def _refuse(self, status: int, message: str) -> None:
        """Answer (unless this request was answered already) and hang up; a request being
        answered learns that its client left."""
        if self.transport.is_closing():
            return
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            self.transport.write(_raw_answer(status, message))
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        self.transport.close()


# -- the application ---------------------------------------------------------------------
_log_lock = threading.Lock()
_logged: set[str] = set()


def _log_once(exc: BaseException) -> None:
    key = f"{type(exc).__name__}: {exc}"
    with _log_lock:
        if key in _logged:
            return
        _logged.add(key)
    logger.error("fallom serve: a request failed: %s", key, exc_info=exc)


@dataclass(frozen=True)
class _Call:
    """What a route's work gets: the path's parameters, the query (its last value of each
    name, blank ones left out), and for a POST the body as it came with its coding."""

    params: Mapping[str, str]
    query: Dict[str, str]
    raw: bytes = b""
    encoding: Optional[str] = None
    content_type: Optional[str] = None


_Work = Callable[["Backend", _Call], Tuple[int, Any]]


def _reply(scope: Scope, status: int, payload: Any, headers: Mapping[str, str] = {},
           close: bool = False) -> Response:
    if isinstance(payload, bytes):  # an OTLP protobuf reply
        data, kind = payload, OTLP_PROTOBUF
    else:
        data, kind = json.dumps(payload).encode(), "application/json"
    extra = dict(headers)
    if scope.get("path") == "/v1/traces":
        extra[INGEST_HEADER] = "batch, gzip"  # what this server takes
    if close:
        extra["Connection"] = "close"
    return Response(data, status_code=status, media_type=kind, headers=extra)


def _public(scope: Scope) -> bool:
    """The web UI's files: the page holds no data, so it needs no key."""
    path = scope.get("path", "")
    return scope.get("method") in ("GET", "HEAD") and (path in _ASSETS
                                                       or bool(_EVAL_PAGE.fullmatch(path)))


class _GateMiddleware:
    """The Host check and the key, before any route or body is read."""

    def __init__(self, app: ASGIApp, backend: Backend) -> None:
        self.app, self.gate = app, backend.gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        refused = self.gate.refusal(headers.get("host"), headers.get("authorization"),
                                    _public(scope))
        if refused is None:
            trust = scope.get("extensions", {}).get("fallom.trust")
            if trust is not None and not _public(scope):
                trust()  # a key's holder sends its body at its own pace
            await self.app(scope, receive, send)
            return
        status, message = refused
        # the body of a 401 is left unread (within the request's deadline) and the
        # connection kept; a request to a name not this machine's is hung up on
        answer = _reply(scope, status, {"error": message}, close=status == 403)
        await answer(scope, receive, send)


async def _body(request: Request, limits: ServeLimits) -> bytes:
    """The request's body: at most ``max_body`` bytes, each wait at most ``idle_timeout``."""
    length = request.headers.get("content-length")
    if length is not None and int(length) > limits.max_body:  # h11 checked it is digits
        raise _RefusedError(413, f"body over {limits.max_body} bytes")
    chunks: List[bytes] = []
    total = 0
    while True:
        try:
            message: Message = await asyncio.wait_for(request.receive(), limits.idle_timeout)
        except asyncio.TimeoutError:
            raise _RefusedError(408, "the body stopped arriving before its end: nothing came "
                                f"for {limits.idle_timeout:g} s") from None
        if message["type"] == "http.disconnect":  # nobody will read the answer
            raise _RefusedError(400, "the body ended before its end: the client left")
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limits.max_body:
            raise _RefusedError(413, f"body over {limits.max_body} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _failure(scope: Scope, exc: Exception) -> Response:
    """A request the server could not answer: 503 when the database may come back (the
    senders keep their spans and try again), else 500."""
    _log_once(exc)
    if isinstance(exc, UnavailableError):
        return _reply(scope, 503, {"error": f"the server failed to store or read: {exc}; "
                                            "try again later"}, {"Retry-After": RETRY_AFTER})
    return _reply(scope, 500, {"error": f"the server failed: {type(exc).__name__}"})


def _query(scope: Scope) -> Dict[str, str]:
    text = scope.get("query_string", b"").decode("latin-1")
    return {name: values[-1] for name, values in parse_qs(text).items()}


def _endpoint(backend: Backend, work: _Work, reads_body: bool
              ) -> Callable[[Request], Awaitable[Response]]:
    """A route: its body read on the event loop, its work (parsing, the database) on a
    thread; every request gets an HTTP answer, 4xx for the client, 5xx for us."""

    async def endpoint(request: Request) -> Response:
        scope = request.scope
        try:
            call = _Call(request.path_params, _query(scope))
            if reads_body:
                call = _Call(call.params, call.query, await _body(request, backend.limits),
                             request.headers.get("content-encoding"),
                             request.headers.get("content-type"))
            status, payload = await run_in_threadpool(_work, backend, work, call, reads_body)
        except _RefusedError as refused:  # what is left of the body is not read: close
            return _reply(scope, refused.status, {"error": str(refused)}, close=True)
        except Exception as exc:
            return _failure(scope, exc)
        return _reply(scope, status, payload)

    return endpoint


def _work(backend: Backend, work: _Work, call: _Call, posted: bool) -> Tuple[int, Any]:
    if not posted:
        backend.catalog.current()  # a read first takes in an edit of the catalog file
    return work(backend, call)


def _page(path: str) -> Callable[[Request], Awaitable[Response]]:
    name, kind = _ASSETS.get(path, _HTML)

    async def page(request: Request) -> Response:
        return Response(_asset_bytes(name), media_type=kind, headers=_PAGE_HEADERS)

    return page


async def _no_route(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    status = 404 if status == 405 else status  # as before: a path is a route for a method
    return _reply(request.scope, status,
                  {"error": f"no route {request.method} {request.scope.get('path')}"})


def _application(backend: Backend) -> Starlette:
    routes = [Route(path, _page(path), methods=["GET"]) for path in _PAGES]
    routes += [Route(path, _endpoint(backend, work, method == "POST"), methods=[method])
               for method, path, work in _ROUTES]
    app = Starlette(routes=routes, middleware=[Middleware(_GateMiddleware, backend=backend)],
                    exception_handlers={HTTPException: _no_route})
    app.router.redirect_slashes = False  # /api/traces/ is no route, as before
    return app


# -- the work of each route (on a thread) --------------------------------------------------
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


def _json(call: _Call, limits: ServeLimits) -> Any:
    return _parse(_decode(call.raw, call.encoding, limits), limits)


def _traces_in(backend: Backend, call: _Call) -> Tuple[int, Any]:
    """POST /v1/traces: Fallom records, a batch of them, or OTLP in JSON or protobuf."""
    limits = backend.limits
    raw = _decode(call.raw, call.encoding, limits)
    if (call.content_type or "").split(";")[0].strip().lower() == OTLP_PROTOBUF:
        try:
            body: Any = from_protobuf(raw)
        except ProtobufMissingError as exc:
            raise _RefusedError(415, str(exc)) from None
        except Exception as exc:  # the protobuf runtime's own decode errors
            raise _RefusedError(400, f"malformed OTLP protobuf: {type(exc).__name__}") from None
        status, answer = _ingest_otlp(backend, body)
        return status, (b"" if status == 200 else answer)
    body = _parse(raw, limits)
    if is_otlp(body):
        return _ingest_otlp(backend, body)
    return _ingest(backend, body)


def _assignment(backend: Backend, call: _Call) -> Tuple[int, Any]:
    """POST /sessions: the model a session was assigned."""
    body = _json(call, backend.limits)
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
    backend.store.add_assignment(body)
    return 200, {"ok": True}


def _metrics(backend: Backend, call: _Call) -> Tuple[int, Any]:
    """POST /spans: custom metrics of a session, as ``fallom`` 0.2.7's ``trace.span``
    sends them."""
    metrics, reason = prepare_metrics(_json(call, backend.limits))
    if metrics is None:
        return 400, {"error": reason}
    limit = backend.limits.max_records
    if len(metrics.values) > limit:
        return 413, {"error": f"over {limit} metrics in one request; send fewer at a time"}
    stored = backend.store.set_metrics(metrics.session_id, metrics.config_key, metrics.values)
    return 200, {"accepted": len(metrics.values), "stored": stored}


def _eval_run(backend: Backend, call: _Call) -> Tuple[int, Any]:
    """POST /api/sdk-evals: a run, as ``fallom`` 0.2.7 and the TypeScript SDK upload it."""
    run, status, reason = prepare_run(_json(call, backend.limits), backend.limits.max_records)
    if run is None:
        return status, {"error": reason}
    stored = backend.store.add_run({"name": run.name, "description": run.description,
                                    "judge_model": run.judge_model,
                                    "dataset_size": run.dataset_size, "summary": run.summary},
                                   run.items)
    return 200, {"run_id": stored["run_id"], "url": f"/evals/{stored['run_id']}",
                 "items": stored["items"], "scores": stored["scores"]}


def _dataset_from_traces(backend: Backend, call: _Call) -> Tuple[int, Any]:
    """POST /api/datasets: a new version of a dataset whose entries are the input and
    output of stored traces."""
    request, reason = prepare_from_traces(_json(call, backend.limits))
    if request is None:
        return 400, {"error": reason}
    if request.key in backend.catalog.current().datasets:
        return 409, {"error": f"dataset {request.key!r} is defined in the catalog file: edit "
                              "it there, or make this one under another key"}
    chosen = request.filters
    traces = backend.store.traces(
        config_key=chosen.get("config_key"), session_id=chosen.get("session_id"),
        customer_id=chosen.get("customer_id"), since=chosen.get("since"),
        until=chosen.get("until"), limit=request.limit)
    entries = [entry for entry in (entry_of_trace(backend.store.trace(t["trace_id"]))
                                   for t in reversed(traces)) if entry is not None]
    if not entries:
        return 400, {"error": f"no stored trace matches {request.filters or 'the filter'} "
                              "with a span that has both an input and an output"}
    made = {"name": request.name, "description": request.description, "source": "traces",
            "filter": {**request.filters, "limit": request.limit}, "entries": entries}
    version = backend.store.version_of("dataset", request.key, made)
    return 200, reply(request.key, version, made, include_entries=False)


def _ingest(backend: Backend, body: Any) -> Tuple[int, Any]:
    records = body["traces"] if isinstance(body, dict) and "traces" in body else [body]
    if not isinstance(records, list):
        return 400, {"error": "traces must be a list"}
    return _store(backend, records, [])


def _ingest_otlp(backend: Backend, body: Dict[str, Any]) -> Tuple[int, Any]:
    records, unreadable = records_from_otlp(body)
    status, answer = _store(backend, records, unreadable)
    rejected = answer.get("rejected", 0)
    if status == 200 and rejected:  # OTLP's own way to say some spans were refused
        answer["partialSuccess"] = {"rejectedSpans": str(rejected), "errorMessage": "; ".join(
            e["reason"] for e in answer["errors"])}
    return status, answer


def _store(backend: Backend, records: List[Any], unreadable: List[str]) -> Tuple[int, Any]:
    limit = backend.limits.max_records
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
    stored = backend.store.add_rows(rows)
    return 200, {"accepted": len(rows), "stored": stored, **summarise(errors)}


def _page_of(query: Dict[str, str]) -> Tuple[int, int]:
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


def _catalog_list(kind: str) -> _Work:
    def listed(backend: Backend, call: _Call) -> Tuple[int, Any]:
        loaded = backend.catalog.current()
        entries = {"configs": loaded.configs, "prompts": loaded.prompts,
                   "prompt_ab_tests": loaded.ab_tests}[kind]
        return 200, {kind: list(entries.values())}
    return listed


def _pinned(kind: str) -> _Work:
    """GET /configs/KEY/version/N and /prompts/KEY/version/N."""
    def pinned(backend: Backend, call: _Call) -> Tuple[int, Any]:
        version = call.params["version"]
        if not _DIGITS.fullmatch(version) or len(version) > 18:
            return 404, {"error": "no such version"}
        found = backend.catalog.pinned(kind, call.params["key"], int(version))
        return (200, found) if found else (404, {"error": "no such version"})
    return pinned


def _traces(backend: Backend, call: _Call) -> Tuple[int, Any]:
    query = call.query
    limit, offset = _page_of(query)
    status = query.get("status")
    if status not in (None, "", "OK", "ERROR"):
        raise _RefusedError(400, "status must be OK or ERROR")
    traces = backend.store.traces(
        session_id=query.get("session_id"), customer_id=query.get("customer_id"),
        config_key=query.get("config_key"), status=status, model=query.get("model"),
        name=query.get("name"), since=_time_of(query, "since"),
        until=_time_of(query, "until"), search=query.get("q"),
        min_duration_ms=_number(query, "min_duration_ms"),
        min_tokens=_number(query, "min_tokens"), min_spans=_number(query, "min_spans"),
        oldest_first=query.get("order") == "asc", limit=limit, offset=offset)
    return 200, {"traces": traces}


def _time_of(query: Mapping[str, str], name: str) -> Optional[str]:
    """``since`` or ``until``: ISO 8601, or a time before now (``24h``) read now; a 400
    naming the parameter and the forms otherwise."""
    given = query.get(name)
    if not given:
        return None
    try:
        return since_key(given)
    except ValueError as exc:
        raise _RefusedError(400, f"{name}: {exc}") from None


def _trace(backend: Backend, call: _Call) -> Tuple[int, Any]:
    trace_id = call.params["trace_id"]
    spans = backend.store.trace(trace_id) if _TRACE_ID.fullmatch(trace_id) else []
    if not spans:
        return 404, {"error": "no such trace"}
    totals = views.trace_totals(spans, backend.catalog.current().prices)
    return 200, {"trace_id": trace_id, "spans": spans, "totals": totals}


def _sessions(backend: Backend, call: _Call) -> Tuple[int, Any]:
    limit, offset = _page_of(call.query)
    return 200, {"sessions": views.sessions(backend.store, limit=limit, offset=offset,
                                            customer_id=call.query.get("customer_id"),
                                            prices=backend.catalog.current().prices)}


def _session(backend: Backend, call: _Call) -> Tuple[int, Any]:
    found = views.session(backend.store, call.params["session_id"],
                          backend.catalog.current().prices)
    return (200, found) if found else (404, {"error": "no such session"})


def _overview(backend: Backend, call: _Call) -> Tuple[int, Any]:
    """Requests, errors, latency and tokens over time, from the rollups ingest keeps."""
    query = call.query
    try:
        return 200, views.overview(backend.store, backend.catalog.current().prices,
                                   since=query.get("since"), until=query.get("until"),
                                   model=query.get("model"), config_key=query.get("config_key"))
    except ValueError as exc:  # since or until: the message names which
        raise _RefusedError(400, str(exc)) from None


def _prices(backend: Backend, call: _Call) -> Tuple[int, Any]:
    return 200, {"prices": backend.catalog.current().prices.as_json()}


def _runs(backend: Backend, call: _Call) -> Tuple[int, Any]:
    limit, offset = _page_of(call.query)
    return 200, {"runs": backend.store.runs(limit=limit, offset=offset)}


def _run(backend: Backend, call: _Call) -> Tuple[int, Any]:
    found = backend.store.run(call.params["run_id"])
    return (200, found) if found else (404, {"error": "no such evaluation run"})


def _dataset(backend: Backend, call: _Call) -> Tuple[int, Any]:
    """One version of a dataset (the latest unless ``version``), as the SDKs read it."""
    key, query = call.params["key"], call.query
    version = _number(query, "version")
    if version is None:
        found = backend.store.latest_version("dataset", key)
    else:
        body = backend.store.version("dataset", key, version)
        found = None if body is None else (version, body)
    if found is None:
        which = "" if version is None else f" version {version}"
        return 404, {"error": f"no dataset {key!r}{which}"}
    include = query.get("include_entries", "true").strip().lower() not in ("false", "0")
    return 200, reply(key, *found, include_entries=include)


_ROUTES: Tuple[Tuple[str, str, _Work], ...] = (
    ("GET", "/configs", _catalog_list("configs")),
    ("GET", "/prompts", _catalog_list("prompts")),
    ("GET", "/prompt-ab-tests", _catalog_list("prompt_ab_tests")),
    ("GET", "/configs/{key:path}/version/{version}", _pinned("config")),
    ("GET", "/prompts/{key:path}/version/{version}", _pinned("prompt")),
    ("GET", "/api/traces", _traces),
    ("GET", "/api/traces/{trace_id}", _trace),
    ("GET", "/api/sessions", _sessions),
    ("GET", "/api/sessions/{session_id:path}", _session),
    ("GET", "/api/overview", _overview),
    ("GET", "/api/prices", _prices),
    ("GET", "/api/experiments", lambda b, c: (200, views.experiments(b.store, b.catalog))),
    ("GET", "/api/prompts", lambda b, c: (200, {"prompts": views.prompts(b.store, b.catalog)})),
    ("GET", "/api/datasets/{key:path}", _dataset),
    ("GET", "/api/evals", _runs),
    ("GET", "/api/evals/{run_id:path}", _run),
    ("POST", "/v1/traces", _traces_in),
    ("POST", "/sessions", _assignment),
    ("POST", "/spans", _metrics),
    ("POST", "/api/sdk-evals", _eval_run),
    ("POST", "/api/datasets", _dataset_from_traces),
)
