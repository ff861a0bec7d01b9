"""Settings: argument > environment variable > default, validated up front.

Every ``init()`` resolves each setting afresh. A wrong value raises
``ValueError`` naming the parameter (or the environment variable it came
from), so misconfiguration fails at start-up rather than in production.
"""

from __future__ import annotations

import ipaddress
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Sequence
from urllib.parse import urlsplit

__all__ = ["DEFAULTS", "Settings", "is_loopback_host", "is_loopback_url", "resolve_settings"]

Redactor = Callable[[Dict[str, Any]], Optional[Dict[str, Any]]]

DEFAULTS: Mapping[str, Any] = {
    "traces_url": "https://traces.fallom.com",
    "configs_url": "https://configs.fallom.com",
    "prompts_url": "https://prompts.fallom.com",
    "config_key": "default",
    "capture_content": True,
    "debug": False,
    "tracing": True,
    "sample_rate": 1.0,
    "propagate_threads": True,
    "allow_insecure_http": False,
    "max_queue_size": 10_000,
    "max_batch_size": 512,
    "max_batch_bytes": 4_000_000,
    "export_concurrency": 16,
    "batch_interval": 1.0,
    "export_timeout": 10.0,
    "shutdown_timeout": 5.0,
    "capture_max_chars": 10_000,
    "capture_max_items": 1_000,
    "capture_max_depth": 20,
    "cache_ttl": 60.0,
    "cold_start_timeout": 1.0,
    "otel_context": False,
    "handle_signals": True,
    "spool_max_bytes": 100_000_000,
    "export_retry_timeout": 30.0,
}

_ENV = {
    "api_key": "FALLOM_API_KEY",
    "traces_url": "FALLOM_TRACES_URL",
    "configs_url": "FALLOM_CONFIGS_URL",
    "prompts_url": "FALLOM_PROMPTS_URL",
    "config_key": "FALLOM_CONFIG_KEY",
    "capture_content": "FALLOM_CAPTURE_CONTENT",
    "debug": "FALLOM_DEBUG",
    "tracing": "FALLOM_TRACING",
    "sample_rate": "FALLOM_SAMPLE_RATE",
    "shutdown_timeout": "FALLOM_SHUTDOWN_TIMEOUT",
    "spool_dir": "FALLOM_SPOOL_DIR",
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Settings:
    """The resolved configuration of one ``init()``; the key never shows in its repr."""

    api_key: str | None = field(default=None, repr=False)
    traces_url: str = DEFAULTS["traces_url"]
    configs_url: str = DEFAULTS["configs_url"]
    prompts_url: str = DEFAULTS["prompts_url"]
    config_key: str = DEFAULTS["config_key"]  # of spans outside any session
    capture_content: bool = True
    debug: bool = False
    tracing: bool = True
    sample_rate: float = 1.0
    propagate_threads: bool = True
    allow_insecure_http: bool = False
    max_queue_size: int = DEFAULTS["max_queue_size"]
    max_batch_size: int = DEFAULTS["max_batch_size"]
    max_batch_bytes: int = DEFAULTS["max_batch_bytes"]
    export_concurrency: int = DEFAULTS["export_concurrency"]  # requests in flight, record mode
    batch: Optional[bool] = None  # None: batches once the server says it takes them
    # None: gzip when the server takes it and is not on this machine (on loopback it
    # would cost the CPU and save nothing); True: whenever the server takes it; False: never
    compress: Optional[bool] = None
    batch_interval: float = DEFAULTS["batch_interval"]
    export_timeout: float = DEFAULTS["export_timeout"]
    shutdown_timeout: float = DEFAULTS["shutdown_timeout"]
    capture_max_chars: int = DEFAULTS["capture_max_chars"]
    capture_max_items: int = DEFAULTS["capture_max_items"]
    capture_max_depth: int = DEFAULTS["capture_max_depth"]
    cache_ttl: float = DEFAULTS["cache_ttl"]
    cold_start_timeout: float = DEFAULTS["cold_start_timeout"]
    otlp_endpoint: Optional[str] = None
    otlp_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    otel_context: bool = False
    spool_dir: Optional[str] = None  # undeliverable records wait on disk here
    spool_max_bytes: int = DEFAULTS["spool_max_bytes"]
    export_retry_timeout: float = DEFAULTS["export_retry_timeout"]  # per request
    handle_signals: bool = True  # SIGTERM drains before the process ends
    openai_stream_usage: Optional[bool] = None  # None: only where known to be accepted
    redact: Redactor | None = None
    exporters: Sequence[Any] = ()

    @property
    def local_mode(self) -> bool:
        """Without a key nothing is sent to the Fallom endpoints."""
        return not self.api_key


def _parse_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{name} must be a boolean (true/false, 1/0, yes/no), got {value!r}")


def _parse_number(value: Any, name: str, *, kind: type, low: float, high: float) -> Any:
    what = "a whole number" if kind is int else "a number"
    try:
        if isinstance(value, bool) or (kind is int and isinstance(value, float)
                                       and not value.is_integer()):
            raise TypeError
        number = kind(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be {what}, got {value!r}") from None
    if (isinstance(number, float) and math.isnan(number)) or not low <= number <= high:
        bounds = f"at least {low:g}" if high >= 2**62 else f"between {low:g} and {high:g}"
        raise ValueError(f"{name} must be {bounds}, got {value!r}")
    return number


def _parse_url(value: Any, name: str) -> str:
    """An http(s) URL, its scheme in lower case (``HTTP://`` is still plain http).

    Refused: a user or password in it (``http://evil\\@127.0.0.1`` reads as loopback to
    one parser and connects to ``evil`` with another), and any URL whose host the HTTP
    client would read differently from the standard library.
    """
    try:
        parts = urlsplit(value.strip()) if isinstance(value, str) else None
        _ = parts and parts.port  # raises for a port that is not a number, or too large
    except ValueError:  # that, or "[::1" without its closing bracket
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{name} must be an http(s) URL with a host, got {value!r}")
    if _agreed_host(value) is None:
        raise ValueError(f"{name} must not hold a user name, password or backslash (the key "
                         "goes in api_key), got a URL with one")
    return parts._replace(scheme=parts.scheme).geturl().rstrip("/")


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


def _parse_key(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


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


_BOOLS = ("capture_content", "debug", "tracing", "propagate_threads", "allow_insecure_http",
          "otel_context", "handle_signals")
_INTS = ("max_queue_size", "max_batch_size", "max_batch_bytes", "export_concurrency",
         "spool_max_bytes",
         "capture_max_chars", "capture_max_items", "capture_max_depth")
_FLOATS = ("batch_interval", "export_timeout", "shutdown_timeout", "cache_ttl",
           "cold_start_timeout", "export_retry_timeout")
_URLS = ("traces_url", "configs_url", "prompts_url")


def resolve_settings(args: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
    """Resolve ``init()`` arguments against the environment and the defaults."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    names: dict[str, str] = {}
    for key in Settings.__dataclass_fields__:
        if args.get(key) is not None:
            values[key], names[key] = args[key], key
        elif key in _ENV and env.get(_ENV[key], "").strip():
            values[key], names[key] = env[_ENV[key]].strip(), _ENV[key]
        elif key in DEFAULTS:
            values[key], names[key] = DEFAULTS[key], key
    for key in _BOOLS:
        values[key] = _parse_bool(values[key], names[key])
    for key in _INTS:
        values[key] = _parse_number(values[key], names[key], kind=int, low=1, high=2**62)
    for key in _FLOATS:
        values[key] = _parse_number(values[key], names[key], kind=float, low=0.0, high=86_400.0)
    for key in ("batch", "compress", "openai_stream_usage"):
        if values.get(key) is not None:
            values[key] = _parse_bool(values[key], names[key])
    values["config_key"] = _parse_key(values["config_key"], names["config_key"])
    spool = values.get("spool_dir")
    if spool is not None:
        if not isinstance(spool, (str, os.PathLike)) or not str(spool).strip():
            raise ValueError(f"{names['spool_dir']} must be a directory path, got {spool!r}")
        values["spool_dir"] = os.path.abspath(os.fspath(spool))
    values["sample_rate"] = _parse_number(
        values["sample_rate"], names["sample_rate"], kind=float, low=0.0, high=1.0
    )
    for key in _URLS:
        values[key] = _parse_url(values[key], names[key])
    _check_callables(values)
    _resolve_otlp(values, names, args, env)
    settings = Settings(**values)
    _check_transport_security(settings, names)
    _warn_about_mistakes(settings, names, env)
    return settings


# FALLOM_* variables read elsewhere (fallom serve, the evals, the test suite): not typos
_OTHER_ENV = ("FALLOM_DATA_DIR", "FALLOM_RAISE_INTERNAL_ERRORS", "FALLOM_EXPECT_NO_PROVIDERS",
              "FALLOM_REFERENCE_PYTHON", "FALLOM_SERVE_API_KEY", "FALLOM_BASE_URL",
              "FALLOM_JUDGE_BASE_URL", "FALLOM_JUDGE_API_KEY", "FALLOM_DATABASE_URL",
              "FALLOM_RETENTION")


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


def _resolve_otlp(values: dict[str, Any], names: dict[str, str], args: Mapping[str, Any],
                  env: Mapping[str, str]) -> None:
    """``otlp_endpoint`` > OTEL_EXPORTER_OTLP_TRACES_ENDPOINT > OTEL_EXPORTER_OTLP_ENDPOINT."""
    endpoint, name = args.get("otlp_endpoint"), "otlp_endpoint"
    if endpoint is None and env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip():
        endpoint, name = env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"].strip(), \
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    elif endpoint is None and env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
        endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"].strip().rstrip("/") + "/v1/traces"
        name = "OTEL_EXPORTER_OTLP_ENDPOINT"
    values["otlp_endpoint"] = None if endpoint is None else _parse_url(endpoint, name)
    names["otlp_endpoint"] = name
    headers = args.get("otlp_headers")
    if headers is None:
        from fallom.infra._otel_headers import parse_headers

        headers = parse_headers(env.get("OTEL_EXPORTER_OTLP_HEADERS"))
    if not isinstance(headers, Mapping):
        raise ValueError(f"otlp_headers must be a mapping, got {headers!r}")
    values["otlp_headers"] = dict(headers)


def _check_callables(values: dict[str, Any]) -> None:
    redact = values.get("redact")
    if redact is not None and not callable(redact):
        raise ValueError(f"redact must be a callable taking a record, got {redact!r}")
    exporters = values.get("exporters") or ()
    for exporter in exporters:
        if not callable(getattr(exporter, "export", None)):
            raise ValueError(f"exporters must have an export(records) method, got {exporter!r}")
    values["exporters"] = tuple(exporters)
    api_key = values.get("api_key")
    if api_key is not None and not isinstance(api_key, str):
        raise ValueError("api_key must be a string")
    if api_key and any(ch.isspace() or not 32 < ord(ch) < 127 for ch in api_key):
        # Never quote the key: it would end up in a log.
        raise ValueError("api_key may hold printable ASCII only (no whitespace or control "
                         "characters); check FALLOM_API_KEY for a stray newline")


def _check_transport_security(settings: Settings, names: Mapping[str, str]) -> None:
    """Refuse to send the key in clear text to anything but this machine."""
    if settings.allow_insecure_http:
        return
    endpoint = settings.otlp_endpoint
    if settings.otlp_headers and endpoint and endpoint.startswith("http://") \
            and not is_loopback_url(endpoint):
        raise ValueError(
            f"{names.get('otlp_endpoint', 'otlp_endpoint')} uses plain http to a non-loopback "
            "host; the OTLP headers (often a key) would travel unencrypted. Use https, or "
            "pass allow_insecure_http=True.")
    if settings.local_mode:
        return
    for key in _URLS:
        url = getattr(settings, key)
        if url.startswith("http://") and not is_loopback_url(url):
            raise ValueError(
                f"{names[key]} uses plain http to a non-loopback host; the API key would travel "
                "unencrypted. Use https, or pass allow_insecure_http=True."
            )
