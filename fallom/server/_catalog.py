"""Configs, prompts, prompt A/B tests, datasets and model prices from one human-editable
file.

TOML (prompts are multi-line) or JSON. Validated at load with errors naming
the file, the key and the problem; reloaded when the file changes; every
change of an entry becomes a new version, remembered in the database.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

from fallom.experiments._assign import ConfigError, parse_config, weight_of
from fallom.server._datasets import catalog_body, catalog_reason, key_reason
from fallom.server._prices import Prices, parse_prices
from fallom.server._store import Store

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["Catalog", "CatalogError"]


class CatalogError(ValueError):
    """The file cannot be used; the message names the file, the key and the problem."""


@dataclass
class _Loaded:
    configs: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    prompts: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    ab_tests: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    datasets: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    prices: Prices = field(default_factory=Prices)


def _read(path: str) -> Mapping[str, Any]:
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
        data = json.loads(raw) if path.endswith(".json") else tomllib.loads(raw.decode())
    except (OSError, ValueError) as exc:
        raise CatalogError(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, Mapping):
        raise CatalogError(f"{path}: the top level must be a table")
    unknown = set(data) - {"configs", "prompts", "prompt_ab_tests", "datasets", "prices"}
    if unknown:
        raise CatalogError(f"{path}: unknown sections {sorted(unknown)}; expected configs, "
                           "prompts, prompt_ab_tests, datasets, prices")
    return data


def _section(data: Mapping[str, Any], name: str, path: str) -> Mapping[str, Any]:
    section = data.get(name, {})
    if not isinstance(section, Mapping):
        raise CatalogError(f"{path}: [{name}] must be a table of entries")
    for key, entry in section.items():
        if not isinstance(entry, Mapping):
            raise CatalogError(f"{path}: {name}.{key}: must be a table")
    return section


def validate(path: str) -> Mapping[str, Any]:
    """Parse and check the whole file; raise :class:`CatalogError` at the first problem."""
    data = _read(path)
    for key, entry in _section(data, "configs", path).items():
        extra = set(entry) - {"variants", "targeting", "salt"}
        if extra:
            raise CatalogError(f"{path}: configs.{key}: unknown fields {sorted(extra)}")
        try:
            config = parse_config({"key": key, "version": 1, **entry})
        except ConfigError as exc:
            raise CatalogError(f"{path}: configs.{key}: {exc}") from None
        for warning in config.warnings:  # served as written: the SDKs tolerate these too
            sys.stderr.write(f"fallom serve: warning: {path}: configs.{key}: {warning}\n")
    prompts = _section(data, "prompts", path)
    for key, entry in prompts.items():
        for name in ("system", "user"):
            if not isinstance(entry.get(name, ""), str):
                raise CatalogError(f"{path}: prompts.{key}: {name} must be a string")
    for key, entry in _section(data, "prompt_ab_tests", path).items():
        variants = entry.get("variants")
        if not isinstance(variants, list) or not variants:
            raise CatalogError(f"{path}: prompt_ab_tests.{key}: variants must be a non-empty list")
        for i, variant in enumerate(variants):
            if not isinstance(variant, Mapping) or variant.get("prompt_key") not in prompts:
                raise CatalogError(f"{path}: prompt_ab_tests.{key}: variant {i} must name a "
                                   "prompt_key defined under [prompts]")
            if weight_of(variant.get("weight")) is None:
                raise CatalogError(f"{path}: prompt_ab_tests.{key}: variant {i} weight must be "
                                   "a number")
    for key, entry in _section(data, "datasets", path).items():
        reason = key_reason("the key", key) or catalog_reason(entry)
        if reason is not None:
            raise CatalogError(f"{path}: datasets.{key}: {reason}")
    try:
        parse_prices(data.get("prices", {}))
    except ValueError as exc:
        raise CatalogError(f"{path}: {exc}") from None
    return data


class Catalog:
    """What the server answers on the config and prompt routes."""

    def __init__(self, path: Optional[str], store: Store) -> None:
        self.path, self._store = path, store
        self._lock = threading.Lock()
        self._mtime: Optional[float] = None
        self._loaded = _Loaded()
        if path is not None:
            self._load(validate(path))  # a bad file at start-up is an error
            self._mtime = os.stat(path).st_mtime

    def current(self) -> _Loaded:
        """The loaded entries, reloading first when the file has changed."""
        if self.path is not None:
            try:
                mtime = os.stat(self.path).st_mtime
            except OSError:
                return self._loaded
            if mtime != self._mtime:
                with self._lock:
                    if mtime != self._mtime:
                        self._mtime = mtime
                        try:
                            self._load(validate(self.path))
                        except CatalogError as exc:
                            sys.stderr.write(f"fallom serve: keeping the previous config: {exc}\n")
        return self._loaded

    def _load(self, data: Mapping[str, Any]) -> None:
        loaded = _Loaded()
        for key, entry in data.get("configs", {}).items():
            body = dict(entry)
            version = self._store.version_of("config", key, body)
            loaded.configs[key] = {"key": key, "version": version, **body}
        for key, entry in data.get("prompts", {}).items():
            body = {"system_prompt": entry.get("system", ""),
                    "user_template": entry.get("user", "")}
            version = self._store.version_of("prompt", key, body)
            loaded.prompts[key] = {"key": key, "version": version, **body}
        for key, entry in data.get("prompt_ab_tests", {}).items():
            body = {"variants": list(entry["variants"])}
            version = self._store.version_of("prompt_ab_test", key, body)
            loaded.ab_tests[key] = {"key": key, "version": version, **body}
        for key, entry in data.get("datasets", {}).items():
            body = catalog_body(key, entry)
            loaded.datasets[key] = {"key": key,
                                    "version": self._store.version_of("dataset", key, body)}
        loaded.prices = Prices(parse_prices(data.get("prices", {})))
        self._loaded = loaded

    def pinned(self, kind: str, key: str, version: int) -> Optional[Dict[str, Any]]:
        body = self._store.version(kind, key, version)
        return None if body is None else {"key": key, "version": version, **body}
