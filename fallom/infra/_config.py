"""Settings: argument > environment variable > default, validated up front.

Each setting is declared once, as a field of :class:`Settings`: its name, type,
default, environment variable, check and one line of documentation. ``init()``'s
parameters, the resolution below and the reference in docs/configuration.md are
all derived from that declaration (tests keep ``init``'s signature and the
document equal to it). Every ``init()`` resolves each setting afresh; a wrong
value raises ``ValueError`` naming the parameter (or the environment variable it
came from), so misconfiguration fails at start-up rather than in production.
"""

from __future__ import annotations

import ipaddress
import math
import os
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlsplit

__all__ = ["DEFAULTS", "OTEL_EXTRA", "SETTINGS", "Settings", "is_loopback_host", "is_loopback_url",
           "resolve_settings", "settings_args", "settings_table"]

# what to run when an optional part is missing: this package is installed from a checkout
# (PyPI's `fallom` is the published 0.2.7, which has no such extra)
OTEL_EXTRA = "the otel extra: pip install -e '.[otel]' in a checkout of fallom"

Redactor = Callable[[Dict[str, Any]], Optional[Dict[str, Any]]]
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


# -- the checks: each takes the value and the name it came under ------------------------
class _Check:
    """A setting's check; ``text`` is its type as the reference shows it."""

    text = ""

    def __call__(self, value: Any, name: str) -> Any:  # pragma: no cover - interface
        raise NotImplementedError


class _Bool(_Check):
    text = "bool"

    def __call__(self, value: Any, name: str) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"{name} must be a boolean (true/false, 1/0, yes/no), got {value!r}")


class _Number(_Check):
    def __init__(self, kind: type, low: float, high: float, unit: str = "") -> None:
        self.kind, self.low, self.high = kind, low, high
        bound = f"≥ {low:g}" if high >= 2**62 else f"{low:g}–{high:g}"
        self.text = f"{kind.__name__} {bound}{unit}"

    def __call__(self, value: Any, name: str) -> Any:
        what = "a whole number" if self.kind is int else "a number"
        try:
            if isinstance(value, bool) or (self.kind is int and isinstance(value, float)
                                           and not value.is_integer()):
                raise TypeError
            number = self.kind(value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{name} must be {what}, got {value!r}") from None
        if (isinstance(number, float) and math.isnan(number)) \
                or not self.low <= number <= self.high:
            bounds = f"at least {self.low:g}" if self.high >= 2**62 \
                else f"between {self.low:g} and {self.high:g}"
            raise ValueError(f"{name} must be {bounds}, got {value!r}")
        return number


class _Url(_Check):
    """An http(s) URL, its scheme in lower case (``HTTP://`` is still plain http).

    Refused: a user or password in it (``http://evil\\@127.0.0.1`` reads as loopback to
    one parser and connects to ``evil`` with another), and any URL whose host the HTTP
    client would read differently from the standard library.
    """

    text = "URL"

    def __call__(self, value: Any, name: str) -> str:
        try:
            parts = urlsplit(value.strip()) if isinstance(value, str) else None
            _ = parts and parts.port  # raises for a port that is not a number, or too large
        except ValueError:  # that, or "[::1" without its closing bracket
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{name} must be an http(s) URL with a host, got {value!r}")
        if _agreed_host(value) is None:
            raise ValueError(f"{name} must not hold a user name, password or backslash (the "
                             "key goes in api_key), got a URL with one")
        return parts._replace(scheme=parts.scheme).geturl().rstrip("/")


class _Text(_Check):
    text = "str"

    def __call__(self, value: Any, name: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name} must be a non-empty string, got {value!r}")
        return value


class _ApiKey(_Check):
    text = "str"

    def __call__(self, value: Any, name: str) -> Optional[str]:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("api_key must be a string")
        if value and any(ch.isspace() or not 32 < ord(ch) < 127 for ch in value):
            # Never quote the key: it would end up in a log.
            raise ValueError("api_key may hold printable ASCII only (no whitespace or control "
                             "characters); check FALLOM_API_KEY for a stray newline")
        return value


class _Directory(_Check):
    text = "path"

    def __call__(self, value: Any, name: str) -> str:
        if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
            raise ValueError(f"{name} must be a directory path, got {value!r}")
        return os.path.abspath(os.fspath(value))


class _Redactor(_Check):
    text = "callable"

    def __call__(self, value: Any, name: str) -> Redactor:
        if not callable(value):
            raise ValueError(f"{name} must be a callable taking a record, got {value!r}")
        return value  # type: ignore[no-any-return]


class _Exporters(_Check):
    text = "list of exporters"

    def __call__(self, value: Any, name: str) -> Tuple[Any, ...]:
        for exporter in value or ():
            if not callable(getattr(exporter, "export", None)):
                raise ValueError(f"{name} must have an export(records) method, got "
                                 f"{exporter!r}")
        return tuple(value or ())


class _Headers(_Check):
    text = "dict"

    def __call__(self, value: Any, name: str) -> Dict[str, str]:
        if not isinstance(value, Mapping):
            raise ValueError(f"{name} must be a mapping, got {value!r}")
        return dict(value)


class _Optional(_Check):
    """None stays None (the setting's "decide for me"); anything else is checked."""

    def __init__(self, check: _Check) -> None:
        self.check, self.text = check, check.text

    def __call__(self, value: Any, name: str) -> Any:
        return None if value is None else self.check(value, name)


_BOOL, _URL = _Bool(), _Url()
_COUNT = _Number(int, 1, 2**62)
_SECONDS = _Number(float, 0.0, 86_400.0, " (s)")


def _otlp_endpoint_env(env: Mapping[str, str]) -> Optional[Tuple[str, str]]:
    """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is, else OTEL_EXPORTER_OTLP_ENDPOINT's
    traces path."""
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip():
        return (env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"].strip(),
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
        return (env["OTEL_EXPORTER_OTLP_ENDPOINT"].strip().rstrip("/") + "/v1/traces",
                "OTEL_EXPORTER_OTLP_ENDPOINT")
    return None


def _otlp_headers_env(env: Mapping[str, str]) -> Optional[Tuple[Any, str]]:
    from fallom.infra._otel_headers import parse_headers

    return parse_headers(env.get("OTEL_EXPORTER_OTLP_HEADERS")), "OTEL_EXPORTER_OTLP_HEADERS"


def _setting(default: Any, check: _Check, doc: str, *, env: Optional[str] = None,
             read_env: Optional[Callable[[Mapping[str, str]], Any]] = None,
             shown: Optional[str] = None, secret: bool = False,
             factory: Optional[Callable[[], Any]] = None) -> Any:
    """One setting's declaration: a dataclass field carrying its environment variable,
    check and documentation. ``shown`` is the default as the reference writes it."""
    meta = {"check": check, "doc": doc, "env": env, "read_env": read_env, "shown": shown}
    if factory is not None:
        return field(default_factory=factory, metadata=meta, repr=not secret)
    return field(default=default, metadata=meta, repr=not secret)


@dataclass(frozen=True)
class Settings:
    """The resolved configuration of one ``init()``; the key never shows in its repr."""

    api_key: Optional[str] = _setting(
        None, _ApiKey(), "Your Fallom API key. Without one nothing is sent to Fallom "
        "(local mode).", env="FALLOM_API_KEY", shown="none", secret=True)
    traces_url: str = _setting("https://traces.fallom.com", _URL, "Where traces are sent.",
                               env="FALLOM_TRACES_URL")
    configs_url: str = _setting("https://configs.fallom.com", _URL,
                                "Where A/B configs are fetched from.", env="FALLOM_CONFIGS_URL")
    prompts_url: str = _setting("https://prompts.fallom.com", _URL,
                                "Where managed prompts are fetched from.",
                                env="FALLOM_PROMPTS_URL")
    capture_content: bool = _setting(
        True, _BOOL, "Record prompts, completions, arguments and results; off, no content "
        "text leaves the process.", env="FALLOM_CAPTURE_CONTENT")
    debug: bool = _setting(False, _BOOL, "Print a tree of each finished trace to stderr.",
                           env="FALLOM_DEBUG")
    config_key: str = _setting("default", _Text(), "The config key of spans outside any "
                               "session.", env="FALLOM_CONFIG_KEY")
    tracing: bool = _setting(True, _BOOL, "Off: no span is recorded (A/B tests and prompts "
                             "still work).", env="FALLOM_TRACING")
    sample_rate: float = _setting(1.0, _Number(float, 0.0, 1.0), "The share of traces "
                                  "recorded; whole traces are kept or dropped.",
                                  env="FALLOM_SAMPLE_RATE")
    propagate_threads: bool = _setting(True, _BOOL, "Threads and executors started inside a "
                                       "span carry its context.")
    redact: Optional[Redactor] = _setting(
        None, _Optional(_Redactor()), "Called with each record before it leaves; return it "
        "changed, or None to drop it.", shown="none")
    exporters: Sequence[Any] = _setting(
        (), _Exporters(), "Your own exporters: objects with `export(records)` returning True "
        "when delivered.", shown="none")
    allow_insecure_http: bool = _setting(False, _BOOL, "Allow plain http off this machine "
                                         "while a key or OTLP headers would travel in it.")
    max_queue_size: int = _setting(10_000, _COUNT, "Spans waiting for export; beyond it they "
                                   "are dropped (`queue_full`) or spooled.")
    max_batch_size: int = _setting(512, _COUNT, "Spans per export batch.")
    max_batch_bytes: int = _setting(4_000_000, _COUNT, "Bytes per request body; a bigger "
                                    "record is cut to fit.")
    batch: Optional[bool] = _setting(None, _Optional(_BOOL), "Send batches (True) or one "
                                     "record per request (False).",
                                     shown="none: as the server says")
    # None: gzip when the server takes it and is not on this machine (on loopback it
    # would cost the CPU and save nothing); True: whenever the server takes it; False: never
    compress: Optional[bool] = _setting(None, _Optional(_BOOL), "Gzip the bodies the server "
                                        "takes gzip for.",
                                        shown="none: only off this machine")
    export_concurrency: int = _setting(16, _COUNT, "Requests in flight when the server takes "
                                       "one record per request.")
    batch_interval: float = _setting(1.0, _SECONDS, "The longest a span waits before its "
                                     "batch is sent.")
    export_timeout: float = _setting(10.0, _SECONDS, "Timeout of one export request.")
    shutdown_timeout: float = _setting(5.0, _SECONDS, "How long the exit drain may take.",
                                       env="FALLOM_SHUTDOWN_TIMEOUT")
    capture_max_chars: int = _setting(10_000, _COUNT, "Characters kept of each captured "
                                      "string.")
    capture_max_items: int = _setting(1_000, _COUNT, "Items kept of each captured list or "
                                      "dict.")
    capture_max_depth: int = _setting(20, _COUNT, "Nesting kept of each captured value.")
    cache_ttl: float = _setting(60.0, _SECONDS, "How often configs and prompts are "
                                "refreshed in the background.")
    cold_start_timeout: float = _setting(1.0, _SECONDS, "How long the first `get` may wait "
                                         "for the first fetch.")
    otlp_endpoint: Optional[str] = _setting(
        None, _Optional(_URL), "Also send every span over OTLP/HTTP to this URL (even "
        "without a key).", read_env=_otlp_endpoint_env, shown="none",
        env="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT")
    otlp_headers: Mapping[str, str] = _setting(
        None, _Headers(), "Headers of the OTLP requests.", read_env=_otlp_headers_env,
        env="OTEL_EXPORTER_OTLP_HEADERS", shown="none", secret=True, factory=dict)
    otel_context: bool = _setting(False, _BOOL, "Nest fallom spans and OpenTelemetry spans in "
                                  "one tree (needs the otel extra).")
    openai_stream_usage: Optional[bool] = _setting(
        None, _Optional(_BOOL), "Ask OpenAI-compatible servers for the token usage of "
        "streams.", shown="none: api.openai.com and Azure ≥ 2024-09-01")
    handle_signals: bool = _setting(True, _BOOL, "Drain what is queued on SIGTERM before the "
                                    "process ends.")
    spool_dir: Optional[str] = _setting(None, _Optional(_Directory()), "Keep spans that "
                                        "cannot be delivered here, for the next run.",
                                        env="FALLOM_SPOOL_DIR", shown="none")
    spool_max_bytes: int = _setting(100_000_000, _COUNT, "The spool's size cap.")
    export_retry_timeout: float = _setting(30.0, _SECONDS, "How long one request is retried "
                                           "(429, 5xx, connection errors).")

    @property
    def local_mode(self) -> bool:
        """Without a key nothing is sent to the Fallom endpoints."""
        return not self.api_key


SETTINGS: Tuple[Field[Any], ...] = fields(Settings)
DEFAULTS: Mapping[str, Any] = {f.name: f.default for f in SETTINGS if f.default_factory is MISSING}
_ENV = {f.name: f.metadata["env"] for f in SETTINGS
        if f.metadata["env"] and f.metadata["read_env"] is None}


def _agreed_host(url: str) -> Optional[str]:
    """The URL's host where the standard library and the HTTP client (urllib3, under
    requests) read the same one and it holds no user info or backslash; else None."""
    from urllib3.util import parse_url

    try:
        parts = urlsplit(url.strip())
        client = parse_url(url.strip()).host or ""
    except ValueError:
        return None
    client = client[1:-1] if client.startswith("[") else client.lower()
    if "@" in parts.netloc or "\\" in url or not parts.hostname or client != parts.hostname:
        return None
    return client


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1: this machine, whoever else is on the network."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """True for a URL on this machine, where plain http is safe: both the standard
    library and the HTTP client must read its host so, and it may hold no user info."""
    host = _agreed_host(url)
    return host is not None and is_loopback_host(host)


def _given(setting: Field[Any], args: Mapping[str, Any],
           env: Mapping[str, str]) -> Tuple[Any, str]:
    """A setting's raw value and the name it came under: argument, variable, default."""
    name, meta = setting.name, setting.metadata
    if args.get(name) is not None:
        return args[name], name
    if meta["read_env"] is not None:
        found: Optional[Tuple[Any, str]] = meta["read_env"](env)
        if found is not None:
            return found
    elif meta["env"] and env.get(meta["env"], "").strip():
        return env[meta["env"]].strip(), meta["env"]
    default = setting.default_factory() if callable(setting.default_factory) \
        else setting.default
    return default, name


def resolve_settings(args: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
    """Resolve ``init()`` arguments against the environment and the defaults.

    Raises ``ValueError`` naming the parameter or variable of the first wrong value.
    """
    env = os.environ if env is None else env
    values: Dict[str, Any] = {}
    names: Dict[str, str] = {}
    for setting in SETTINGS:
        value, names[setting.name] = _given(setting, args, env)
        values[setting.name] = setting.metadata["check"](value, names[setting.name])
    settings = Settings(**values)
    _check_transport_security(settings, names)
    _warn_about_mistakes(settings, names, env)
    return settings


# FALLOM_* variables read elsewhere (fallom serve, the evals, the test suite): not typos
_OTHER_ENV = ("FALLOM_DATA_DIR", "FALLOM_RAISE_INTERNAL_ERRORS", "FALLOM_EXPECT_NO_PROVIDERS",
              "FALLOM_REFERENCE_PYTHON", "FALLOM_SERVE_API_KEY", "FALLOM_BASE_URL",
              "FALLOM_JUDGE_BASE_URL", "FALLOM_JUDGE_API_KEY", "FALLOM_DATABASE_URL",
              "FALLOM_RETENTION", "FALLOM_TEST_POSTGRES_URL")


def _warn_about_mistakes(settings: Settings, names: Mapping[str, str],
                         env: Mapping[str, str]) -> None:
    """Say what would otherwise fail in silence: a misspelt variable, a URL with no key."""
    import difflib

    from fallom.infra._guard import logger

    known = (*_ENV.values(), *_OTHER_ENV)
    for variable in sorted(env):
        if variable.startswith("FALLOM_") and variable not in known:
            close = difflib.get_close_matches(variable, known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            logger.warning("fallom: the environment variable %s is not one fallom reads%s",
                           variable, hint)
    if settings.local_mode and settings.tracing and settings.traces_url != DEFAULTS["traces_url"]:
        logger.warning("fallom: %s is set (%s) but there is no API key, so nothing is sent; "
                       "pass api_key or set FALLOM_API_KEY", names["traces_url"],
                       settings.traces_url)


def _check_transport_security(settings: Settings, names: Mapping[str, str]) -> None:
    """Refuse to send the key in clear text to anything but this machine."""
    if settings.allow_insecure_http:
        return
    endpoint = settings.otlp_endpoint
    if settings.otlp_headers and endpoint and endpoint.startswith("http://") \
            and not is_loopback_url(endpoint):
        raise ValueError(
            f"{names['otlp_endpoint']} uses plain http to a non-loopback "
            "host; the OTLP headers (often a key) would travel unencrypted. Use https, or "
            "pass allow_insecure_http=True.")
    if settings.local_mode:
        return
    for key in ("traces_url", "configs_url", "prompts_url"):
        url = getattr(settings, key)
        if url.startswith("http://") and not is_loopback_url(url):
            raise ValueError(
                f"{names[key]} uses plain http to a non-loopback host; the API key would travel "
                "unencrypted. Use https, or pass allow_insecure_http=True."
            )


def _shown(setting: Field[Any]) -> str:
    meta = setting.metadata
    if meta["shown"] is not None:
        return str(meta["shown"])
    default = setting.default
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, int) and default >= 10_000:
        return f"`{default:_}`"
    return f"`{default}`"


def settings_args(indent: str = "        ") -> str:
    """The ``Args:`` lines of ``init``'s docstring, one per setting, each ``indent``-ed."""
    lines = []
    for setting in SETTINGS:
        env = setting.metadata["env"]
        source = f" [{env}]" if env else ""
        lines.append(f"{indent}{setting.name}: {setting.metadata['doc']} Default "
                     f"{_shown(setting).strip('`')}{source}.\n")
    return "".join(lines)


def settings_table() -> str:
    """The configuration reference of docs/configuration.md, one row per setting."""
    rows = ["| `init` argument | environment variable | type | default | what it does |",
            "|---|---|---|---|---|"]
    for setting in SETTINGS:
        meta = setting.metadata
        env = ", ".join(f"`{v.strip()}`" for v in meta["env"].split(",")) if meta["env"] else ""
        rows.append(f"| `{setting.name}` | {env} | {meta['check'].text} | {_shown(setting)} "
                    f"| {meta['doc']} |")
    return "\n".join(rows) + "\n"
