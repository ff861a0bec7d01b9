"""The ``fallom`` command: ``fallom serve`` and ``fallom traces``."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence
from urllib.parse import quote, urlsplit

import requests

from fallom._version import __version__
from fallom.infra._config import is_loopback_url

__all__ = ["default_db_path", "main"]

DESCRIPTION = ("fallom: a local Fallom backend (fallom serve) and a terminal view of "
               "its traces (fallom traces).")


def default_db_path() -> Path:
    """``traces.db`` in $FALLOM_DATA_DIR, else $XDG_DATA_HOME/fallom, else ~/.local/share/fallom."""
    if os.environ.get("FALLOM_DATA_DIR"):
        base = Path(os.environ["FALLOM_DATA_DIR"])
    elif os.environ.get("XDG_DATA_HOME"):
        base = Path(os.environ["XDG_DATA_HOME"]) / "fallom"
    else:
        base = Path.home() / ".local" / "share" / "fallom"
    return base / "traces.db"


def _stop_on_signals() -> None:
    """SIGTERM and SIGINT stop the server, even when SIGINT came in ignored (``nohup``,
    a runner that ignores it): a service manager's stop always works."""
    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    for name in ("SIGTERM", "SIGINT"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), stop)


SERVER_EXTRA = "pip install -e '.[server]' in a checkout of fallom"
# what the server extra installs (with what they bring): a missing one means no extra
_SERVER_MODULES = frozenset({"starlette", "uvicorn", "h11", "anyio", "sqlalchemy", "alembic",
                             "psycopg"})
RETENTION_ENV = "FALLOM_RETENTION"


def _server_missing(exc: ImportError) -> Optional[str]:
    """The line to print when ``exc`` says the server extra is not installed, else None."""
    if not isinstance(exc, ModuleNotFoundError) or \
            (exc.name or "").split(".")[0] not in _SERVER_MODULES:
        return None
    return f"fallom serve: needs the server extra ({exc.name} is missing): {SERVER_EXTRA}\n"


def _server_defaults() -> Any:
    """The limits' defaults for ``fallom serve --help``; None without the server extra."""
    try:
        from fallom.server._app import ServeLimits
    except ImportError as exc:
        if _server_missing(exc) is None:
            raise
        return None
    return ServeLimits()


def _serve(args: argparse.Namespace) -> int:
    """Run the server; a problem at start is one ``fallom serve: ...`` line and exit 2."""
    try:
        from fallom.server._app import FallomServer, ServeLimits
        from fallom.server._db import StoreError, database
        from fallom.server._store import migrate
    except ImportError as exc:
        missing = _server_missing(exc)
        if missing is None:
            raise
        sys.stderr.write(missing)
        return 2
    try:
        keys = _api_keys(args)
        retention = _retention(args)
        db = database(args.db, default_path=str(default_db_path()))
    except ValueError as exc:
        sys.stderr.write(f"fallom serve: {exc}\n")
        return 2
    if db.path is not None:
        try:
            Path(db.path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            sys.stderr.write(f"fallom serve: cannot create the directory {Path(db.path).parent}: "
                             f"{exc.strerror or exc}\n")
            return 2
    if args.action == "migrate":
        try:
            print(migrate(db))
        except (StoreError, ValueError) as exc:
            sys.stderr.write(f"fallom serve: {exc}\n")
            return 2
        return 0
    limits = ServeLimits(max_body=args.max_body, max_decompressed=args.max_decompressed,
                         max_records=args.max_records, max_values=args.max_values,
                         max_connections=args.max_connections, idle_timeout=args.idle_timeout,
                         request_timeout=args.request_timeout)
    try:
        server = FallomServer(host=args.host, port=args.port, db=db, config=args.config,
                              api_keys=keys, limits=limits, retention=retention,
                              workers=args.workers)
    except (StoreError, ValueError, OSError, OverflowError) as exc:  # CatalogError: ValueError
        sys.stderr.write(f"fallom serve: {exc}\n")
        return 2
    _stop_on_signals()  # before it says it is up: a stop right after that must work
    try:
        # A key given is never printed (it would land in service logs); without one any
        # key is accepted, and a generated one is shown once to copy.
        _announce(server.url, db.shown, retention, args.workers,
                  None if keys else f"local-{secrets.token_hex(8)}")
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    print("fallom serve: stopped", file=sys.stderr)
    return 0


def _retention(args: argparse.Namespace) -> Optional[float]:
    """--retention, else $FALLOM_RETENTION, as seconds; None keeps every trace.

    ValueError says what is wrong, and which of the two said it.
    """
    from fallom.server._store import parse_retention

    for given, name in ((args.retention, "--retention"),
                        (os.environ.get(RETENTION_ENV, "").strip(), RETENTION_ENV)):
        if given:
            try:
                return parse_retention(given)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
    return None


KEY_ENV = "FALLOM_SERVE_API_KEY"


def _api_keys(args: argparse.Namespace) -> List[str]:
    """The accepted keys: --api-key, each line of --api-key-file, $FALLOM_SERVE_API_KEY.

    The file and the variable keep a key out of the process list, where any local
    user reads command lines. ValueError says what is wrong.
    """
    keys = list(args.api_key or [])
    if any(not key.strip() for key in keys):
        raise ValueError("--api-key must not be empty")
    if args.api_key_file:
        try:
            text = Path(args.api_key_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ValueError(f"cannot read --api-key-file {args.api_key_file}: {reason}"
                             ) from None
        found = [line.strip() for line in text.splitlines() if line.strip()]
        if not found:
            raise ValueError(f"--api-key-file {args.api_key_file} holds no key")
        keys += found
    if os.environ.get(KEY_ENV, "").strip():
        keys.append(os.environ[KEY_ENV].strip())
    return keys


def _announce(url: str, db: str, retention: Optional[float], workers: int,
              key: Optional[str]) -> None:
    from fallom.server._store import retention_text

    processes = f" ({workers} worker processes)" if workers > 1 else ""
    print(f"fallom serve: listening on {url}{processes}, storing traces in {db}",
          file=sys.stderr)
    kept = (f"keeping traces for {retention_text(retention)}: older ones are deleted in the "
            "background" if retention else f"keeping every trace (--retention 30d or "
            f"${RETENTION_ENV} to delete older ones)")
    print(f"fallom serve: {kept}", file=sys.stderr)
    print("# export these to send to it:", file=sys.stderr)
    exports = [("FALLOM_TRACES_URL", url), ("FALLOM_CONFIGS_URL", url),
               ("FALLOM_PROMPTS_URL", url), ("FALLOM_BASE_URL", url)]  # the evals' datasets, runs
    for name, value in [("FALLOM_API_KEY", key)] * (key is not None) + exports:
        print(f"export {name}={value}")
    if key is None:
        print("# and FALLOM_API_KEY: one of the keys the server was given", file=sys.stderr)
    sys.stdout.flush()


def _get(url: str, key: str, params: Optional[Dict[str, str]] = None) -> Any:
    response = requests.get(url, params=params, headers={"Authorization": f"Bearer {key}"},
                            timeout=10)
    if response.status_code == 401:
        raise SystemExit("fallom traces: the server refused the API key (set FALLOM_API_KEY)")
    if response.status_code == 404:
        raise SystemExit(f"fallom traces: not found: {url}")
    if not response.ok:
        raise SystemExit(f"fallom traces: the server answered {response.status_code}: "
                         f"{_error(response)}")
    return response.json()


def _error(response: requests.Response) -> str:
    try:
        return str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


def _since(text: str) -> str:
    """``--since`` as the server compares it; without the server extra (a client
    machine), as given: the server says what is wrong with it."""
    try:
        from fallom.server._store import since_key
    except ImportError as exc:
        if _server_missing(exc) is None:
            raise
        return text
    try:
        return since_key(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _output() -> Any:
    """A console for stdout: colour only when stdout is a terminal, no width cut otherwise."""
    from fallom.console import make_console

    return make_console(sys.stdout, width=None if sys.stdout.isatty() else 100_000)


def _row(trace: Dict[str, Any], more: str) -> List[str]:
    from fallom.console import clean, preview

    duration = trace.get("duration_ms")
    status = str(trace.get("status"))
    if status == "ERROR" and trace.get("error_message"):
        status = f"ERROR {preview(str(trace['error_message']), more)}"
    tokens = trace.get("total_tokens")
    row = [str(trace.get("trace_id")), str(trace.get("start_time") or "")[:23],
           str(trace.get("root_name") or "?"), ",".join(trace.get("models") or []) or "-",
           "-" if duration is None else f"{duration:.1f}ms", "-" if tokens is None else str(tokens),
           str(trace.get("session_id") or "-"), status]
    return [clean(cell) for cell in row]  # stored text must not drive the terminal


def _query(args: argparse.Namespace) -> Dict[str, str]:
    query = {"limit": str(args.limit), "offset": str((args.page - 1) * args.limit)}
    for name, value in (("session_id", args.session), ("customer_id", args.customer),
                        ("config_key", args.config), ("status", args.status),
                        ("model", args.model), ("name", args.name), ("since", args.since)):
        if value:
            query[name] = value
    return query


def _traces(args: argparse.Namespace) -> int:
    url = (args.url or os.environ.get("FALLOM_TRACES_URL") or "http://127.0.0.1:8787").rstrip("/")
    given = args.api_key or os.environ.get("FALLOM_API_KEY")
    if given and not args.allow_insecure_http and urlsplit(url).scheme.lower() != "https" \
            and not is_loopback_url(url):
        sys.stderr.write(f"fallom traces: refusing to send the API key in clear to {url}: "
                         "use an https:// URL (or --allow-insecure-http to send it anyway)\n")
        return 2
    key = given or "local"  # a server without --api-key takes any key
    console = _output()
    try:
        if args.action and args.action[0] == "show":
            if len(args.action) != 2:
                raise SystemExit("usage: fallom traces show TRACE_ID [--full]")
            trace = _get(f"{url}/api/traces/{quote(args.action[1], safe='')}", key)
            if args.json:
                print(json.dumps(trace, indent=2))
            else:
                from fallom.console import print_traces

                print_traces(trace["spans"], console, full=args.full)
            return 0
        if args.action:
            raise SystemExit(f"fallom traces: unknown action {args.action[0]!r}")
        listing = _get(f"{url}/api/traces", key, _query(args))
    except requests.RequestException as exc:
        sys.stderr.write(f"fallom traces: cannot reach {url}: {type(exc).__name__}\n")
        return 1
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    _table(listing["traces"], console)
    return 0


def _table(traces: List[Dict[str, Any]], console: Any) -> None:
    from rich.text import Text

    from fallom.console import ascii_only, is_unicode

    more = "…" if is_unicode(console) else "..."
    rows = [["TRACE", "START", "NAME", "MODEL", "DURATION", "TOKENS", "SESSION", "STATUS"]]
    rows += [_row(t, more) for t in traces]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        line = Text("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip(),
                    style="bold" if index == 0 else "red" if row[-1].startswith("ERROR") else "")
        console.print(line if more != "..." else ascii_only(line), crop=True, no_wrap=True,
                      overflow="ellipsis")
    if not traces:
        console.print(Text("no traces (fallom serve stores what the SDKs send it)",
                           style="dim"))


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535)")
    return port


def _positive(kind: Any) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
        return value
    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fallom", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"fallom {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    _serve_parser(commands)
    traces = commands.add_parser(
        "traces", help="list recent traces, or show one",
        description="List the traces a fallom serve holds, newest first, or show one as a "
                    "tree: fallom traces show TRACE_ID [--full].")
    traces.add_argument("action", nargs="*", help="'show TRACE_ID' to print one trace's tree")
    traces.add_argument("--url", help="server URL (default: $FALLOM_TRACES_URL, "
                                      "else http://127.0.0.1:8787)")
    traces.add_argument("--api-key", help="default: $FALLOM_API_KEY")
    traces.add_argument("--allow-insecure-http", action="store_true",
                        help="send the API key over plain http to a host that is not this "
                             "machine (anyone on the path can read it)")
    traces.add_argument("--session", help="only this session's traces")
    traces.add_argument("--customer", help="only this customer's traces")
    traces.add_argument("--config", help="only traces of this config key")
    traces.add_argument("--model", help="only traces with a call to this model")
    traces.add_argument("--name", help="only traces whose root name contains this")
    traces.add_argument("--status", choices=("OK", "ERROR"), type=str.upper,
                        help="only traces that succeeded, or that have an error")
    traces.add_argument("--since", metavar="TIME", type=_since,
                        help="only traces started at or after this ISO 8601 date or time, "
                             "UTC unless it has an offset: 2026-11-30, 2026-11-30T09:30+01:00")
    traces.add_argument("--limit", type=_positive(int), default=20, help="traces per page")
    traces.add_argument("--page", type=_positive(int), default=1, help="page, from 1")
    traces.add_argument("--full", action="store_true",
                        help="with show: whole inputs and outputs, not previews")
    traces.add_argument("--json", action="store_true", help="raw JSON output")
    traces.set_defaults(run=_traces)
    return parser


def _serve_parser(commands: Any) -> None:
    defaults = _server_defaults()
    serve = commands.add_parser(
        "serve", help="run a Fallom backend on SQLite or PostgreSQL",
        description="A Fallom backend: traces (fallom records and OTLP), configs, prompts, "
                    "evaluations, on one SQLite file or a PostgreSQL database that any number "
                    "of fallom serve processes share. Auth: with a key (--api-key, "
                    f"--api-key-file or ${KEY_ENV}) only the keys given are accepted (as "
                    "'Authorization: Bearer KEY'); without it any key is, so the server then "
                    "listens on loopback only and answers only requests addressed to a "
                    "loopback name. 'fallom serve migrate' only brings the database's schema "
                    "up to date (which serving also does), for an init container.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    serve.set_defaults(run=_serve)
    if defaults is None:  # without the server extra: any arguments, to say what to install
        serve.set_defaults(any_arguments=True)
        serve.epilog = f"(needs the server extra: {SERVER_EXTRA})"
        return
    serve.add_argument("action", nargs="?", choices=("migrate",),
                       help="migrate: upgrade the database's schema, then exit")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (IPv6: ::1)")
    serve.add_argument("--port", type=_port, default=8787, help="0 picks a free port")
    serve.add_argument("--db", help="PATH or sqlite:///PATH (a SQLite file), or "
                                    "postgresql://USER@HOST:PORT/DB (also postgres://; a "
                                    "password is best kept in ~/.pgpass or $PGPASSWORD); "
                                    "default: $FALLOM_DATABASE_URL, else traces.db in the data "
                                    f"directory, now {default_db_path()}")
    serve.add_argument("--workers", type=_positive(int), default=1, metavar="N",
                       help="processes answering on the port (PostgreSQL only: SQLite takes 1)")
    serve.add_argument("--retention", metavar="AGE",
                       help="delete traces older than this (30d, 12h, 2w), in the background; "
                            f"default: ${RETENTION_ENV}, else keep every trace")
    serve.add_argument("--config", help="configs and prompts file (TOML or JSON)")
    serve.add_argument("--api-key", action="append",
                       help="accepted key (repeatable; visible to local users in the process "
                            f"list: prefer --api-key-file or ${KEY_ENV}); required off loopback")
    serve.add_argument("--api-key-file", metavar="PATH",
                       help="a file of accepted keys, one a line")
    for name, kind, text in (
            ("max-body", int, "bytes per request body"),
            ("max-decompressed", int, "bytes per body after gzip"),
            ("max-records", int, "records (or OTLP spans) per request"),
            ("max-values", int, "JSON values per request"),
            ("max-connections", int, "open connections; more get a 503"),
            ("idle-timeout", float, "seconds before a silent connection is closed"),
            ("request-timeout", float, "seconds a client has to send a request's headers "
                                       "(and its body, without a valid key)")):
        serve.add_argument(f"--{name}", type=_positive(kind), metavar="N", help=text,
                           default=getattr(defaults, name.replace("-", "_")))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "any_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.run(args))
    except BrokenPipeError:  # ``fallom traces | head``: the reader left; end quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
