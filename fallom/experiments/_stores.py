"""The configs and prompts stores of the current ``init()``, and their wire parsing."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Optional, Tuple
from urllib.parse import quote

import cachetools

from fallom.experiments._assign import Config, ConfigError, parse_config, weight_of
from fallom.experiments._remote import Fetcher, RemoteStore
from fallom.infra._config import Settings
from fallom.infra._fork import at_fork, register
from fallom.infra._guard import logger
from fallom.tracing import _runtime

__all__ = ["ABTest", "Experiments", "Template", "current", "required", "start", "stop",
           "version_number"]


@dataclass(frozen=True)
class Template:
    key: str
    version: Any
    system: str
    user: str


@dataclass(frozen=True)
class ABTest:
    key: str
    version: Any
    variants: Tuple[Mapping[str, Any], ...]
    weights: Tuple[float, ...]


def required(value: Any, name: str, *, empty: bool = False) -> str:
    """``value`` if it is a string (non-empty unless ``empty``); else a ValueError naming it."""
    if not isinstance(value, str) or not (value or empty):
        kind = "a string" if empty else "a non-empty string"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return value


def version_number(value: Any) -> Optional[int]:
    """A pinned version: None, or a whole number (digits in a string too, as 0.2.7 took)."""
    if value is None or (type(value) is int and value >= 0):
        return value
    if isinstance(value, str) and value.isdigit() and value.isascii() and len(value) < 19:
        return int(value)
    raise ValueError(f"version must be a whole number (1, 2, ...) or None, got {value!r}")


_warned: cachetools.LRUCache[Tuple[Any, ...], bool] = cachetools.LRUCache(10_000)
_warned_lock = threading.Lock()


@at_fork
def _new_warned_lock() -> None:
    global _warned_lock
    _warned_lock = threading.Lock()


def warn_once(*what: Any) -> None:
    """One warning per (key, version, problem), however often the config is seen."""
    with _warned_lock:
        if what in _warned:
            return
        _warned[what] = True
    key, version, problem = what
    logger.warning("fallom: %r (version %s): %s", key, version, problem)


def _entries(body: Any, field: str) -> Iterator[Any]:
    if not isinstance(body, Mapping) or not isinstance(body.get(field), list):
        raise ValueError(f"expected an object with a list {field!r}")
    return iter(body[field])


def parse_configs(body: Any) -> Iterator[Tuple[str, Optional[Config]]]:
    for raw in _entries(body, "configs"):
        config = parse_one_config(raw)
        key = raw.get("key") if isinstance(raw, Mapping) else None
        if isinstance(key, str):
            yield key, config


def parse_one_config(raw: Any) -> Optional[Config]:
    """A usable config, or None (warned once) so the previous good version stays."""
    key = raw.get("key") if isinstance(raw, Mapping) else None
    version = raw.get("version") if isinstance(raw, Mapping) else None
    try:
        config = parse_config(raw)
    except ConfigError as exc:
        warn_once(key, version, f"rejected: {exc}")
        return None
    for problem in config.warnings:
        warn_once(config.key, config.version, problem)
    return config


def parse_template(raw: Any) -> Optional[Template]:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("key"), str):
        return None
    system, user = raw.get("system_prompt") or "", raw.get("user_template") or ""
    if not isinstance(system, str) or not isinstance(user, str):
        warn_once(raw["key"], raw.get("version"), "rejected: templates must be strings")
        return None
    return Template(raw["key"], raw.get("version"), system, user)


def parse_templates(body: Any) -> Iterator[Tuple[str, Optional[Template]]]:
    for raw in _entries(body, "prompts"):
        if isinstance(raw, Mapping) and isinstance(raw.get("key"), str):
            yield raw["key"], parse_template(raw)


def parse_ab_tests(body: Any) -> Iterator[Tuple[str, Optional[ABTest]]]:
    for raw in _entries(body, "prompt_ab_tests"):
        if not isinstance(raw, Mapping) or not isinstance(raw.get("key"), str):
            continue
        variants = raw.get("variants")
        valid = isinstance(variants, list) and variants and all(
            isinstance(v, Mapping) and isinstance(v.get("prompt_key"), str)
            and weight_of(v.get("weight")) is not None
            and (v.get("prompt_version") is None or _is_int(v.get("prompt_version")))
            for v in variants)
        if not valid:
            warn_once(raw["key"], raw.get("version"), "rejected: malformed prompt A/B variants")
            yield raw["key"], None
            continue
        checked: list[Mapping[str, Any]] = list(variants or ())
        weights = tuple(weight_of(v["weight"]) or 0.0 for v in checked)
        yield raw["key"], ABTest(raw["key"], raw.get("version"), tuple(checked), weights)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Experiments:
    """The stores of one ``init()``, sharing one background fetcher."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.fetcher = Fetcher(settings.api_key or "", timeout=settings.export_timeout)
        ttl, wait = settings.cache_ttl, settings.cold_start_timeout
        configs, prompts = settings.configs_url, settings.prompts_url
        self.configs = RemoteStore(
            self.fetcher, "configs", f"{configs}/configs", parse_configs,
            lambda key, n: f"{configs}/configs/{quote(key, safe='')}/version/{quote(str(n))}",
            parse_one_config, ttl=ttl, cold_wait=wait)
        self.prompts = RemoteStore(
            self.fetcher, "prompts", f"{prompts}/prompts", parse_templates,
            lambda key, n: f"{prompts}/prompts/{quote(key, safe='')}/version/{quote(str(n))}",
            parse_template, ttl=ttl, cold_wait=wait)
        self.ab_tests = RemoteStore(self.fetcher, "prompt A/B tests",
                                    f"{prompts}/prompt-ab-tests", parse_ab_tests, ttl=ttl,
                                    cold_wait=wait)
        self._reported: cachetools.LRUCache[Tuple[Any, ...], bool] = cachetools.LRUCache(100_000)
        self._lock = threading.Lock()
        register(self)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def report(self, config: Config, session_id: str, model: str) -> None:
        """``POST /sessions`` once per config, version and session, in the background."""
        key = (config.key, config.version, session_id)
        with self._lock:
            if key in self._reported:
                return
            self._reported[key] = True
        payload = {"config_key": config.key, "config_version": config.version,
                   "session_id": session_id, "assigned_model": model}
        self.fetcher.reporter.post(f"{self.settings.configs_url}/sessions", payload)


def current() -> Optional[Experiments]:
    """The stores of the current runtime (None in local mode or before ``init()``)."""
    experiments: Optional[Experiments] = _runtime.STATE.experiments
    return experiments


def start(settings: Settings) -> Optional[Experiments]:
    """The stores for a new runtime; fetching starts now. Local mode (no key) fetches nothing."""
    return None if settings.local_mode else Experiments(settings)


def stop(experiments: Optional[Experiments], deadline: float = 0.0) -> None:
    """Stop ``experiments``' fetches; its queued reports are sent until ``deadline``
    (``time.monotonic()``), in the background."""
    if experiments is not None:
        experiments.fetcher.stop(deadline)
