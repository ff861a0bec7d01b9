"""Configs and prompts from the Fallom servers, served from memory.

Callers never wait on the network once a cache is warm: a stale value is
served at once while one background refresh runs; server errors and
timeouts keep the last good value. Only a cold cache makes a caller wait,
and only for ``cold_wait`` seconds (default 1), after which it falls back.
"""

from __future__ import annotations

import os
import queue
import threading
import time
import weakref
from typing import Any, Callable, Dict, Hashable, Iterable, List, Optional, Set, Tuple

import cachetools
import requests

from ._guard import logger, report_internal_error

__all__ = ["Fetcher", "RemoteStore"]

_MISSING = object()
Task = Tuple[Hashable, ...]


class Fetcher:
    """One daemon thread doing every fetch and report, in order, off the caller's path."""

    def __init__(self, api_key: str, timeout: float = 5.0) -> None:
        self._api_key = api_key
        self.timeout = timeout
        self._stores: List[RemoteStore] = []
        self.after_fork()
        _FETCHERS.add(self)

    def after_fork(self) -> None:
        """A fresh thread, queue and connections (a forked child inherits none that work)."""
        self._queue: queue.Queue[Optional[Tuple[Task, Callable[[], None]]]] = queue.Queue()
        self._pending: Set[Task] = set()
        self._lock = threading.Lock()
        self._session = requests.Session()
        self._session.trust_env = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fallom-fetch", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return "Fetcher()"

    def get_json(self, url: str) -> Tuple[int, Any]:
        """(status, parsed body or None); (0, None) when the server cannot be reached."""
        try:
            response = self._session.get(url, headers=self._headers(), allow_redirects=False,
                                         timeout=(min(2.0, self.timeout), self.timeout))
        except requests.RequestException as exc:
            logger.debug("fallom: cannot fetch %s: %s", url, type(exc).__name__)
            return 0, None
        with response:
            if response.status_code != 200:
                return response.status_code, None
            try:
                return 200, response.json()
            except ValueError:
                return -1, None  # malformed JSON

    def post_json(self, url: str, payload: Any) -> None:
        try:
            self._session.post(url, json=payload, headers=self._headers(),
                               allow_redirects=False, timeout=(2.0, self.timeout)).close()
        except requests.RequestException as exc:
            logger.debug("fallom: cannot post to %s: %s", url, type(exc).__name__)

    def _headers(self) -> Dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"}

    def submit(self, task: Task, work: Callable[[], None]) -> None:
        """Queue ``work`` unless the same task is already queued (100 callers, one fetch)."""
        with self._lock:
            if task in self._pending:
                return
            self._pending.add(task)
        self._queue.put((task, work))

    def watch(self, store: RemoteStore) -> None:
        self._stores.append(store)
        self._queue.put(None)  # wake up to schedule its refreshes

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(None)

    def _run(self) -> None:
        while not self._stop.is_set():
            due = min((s.next_refresh() for s in self._stores), default=60.0)
            try:
                item = self._queue.get(timeout=max(0.01, due - time.monotonic()))
            except queue.Empty:
                item = None
            if item is None:
                for store in list(self._stores):
                    if store.next_refresh() <= time.monotonic():
                        store.refresh_in_background()
                continue
            task, work = item
            try:
                work()
            except Exception as exc:
                report_internal_error(exc, "background fetch")
            finally:
                with self._lock:
                    self._pending.discard(task)


_FETCHERS: weakref.WeakSet[Fetcher] = weakref.WeakSet()


def _restart_after_fork() -> None:
    for fetcher in list(_FETCHERS):
        if not fetcher._stop.is_set():
            fetcher.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_restart_after_fork)


class RemoteStore:
    """Latest versions from a list endpoint (TTL, stale-while-refresh), pinned ones forever."""

    def __init__(self, fetcher: Fetcher, name: str, list_url: str,
                 parse_list: Callable[[Any], Iterable[Tuple[str, Any]]],
                 pinned_url: Optional[Callable[[str, Any], str]] = None,
                 parse_one: Optional[Callable[[Any], Any]] = None, *, ttl: float = 60.0,
                 cold_wait: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._fetcher = fetcher
        self._list_url, self._parse_list = list_url, parse_list
        self._pinned_url, self._parse_one = pinned_url, parse_one
        self.cold_wait = cold_wait
        self._clock = clock
        self._ttl = ttl
        self._fresh: cachetools.TTLCache[str, bool] = cachetools.TTLCache(1, ttl, timer=clock)
        self._latest: Dict[str, Any] = {}
        self._pinned: cachetools.LRUCache[Tuple[str, Any], Any] = cachetools.LRUCache(4096)
        self._absent: cachetools.TTLCache[Tuple[str, Any], bool] = cachetools.TTLCache(
            4096, ttl, timer=clock)
        self._loaded = threading.Event()
        self._next_refresh = 0.0
        self.fetches = 0
        fetcher.watch(self)

    # -- the caller's side: memory only, except a bounded wait when cold -------------
    def latest(self, key: str) -> Any:
        if not self._loaded.is_set():
            self.refresh_in_background()
            self._loaded.wait(self.cold_wait)
        elif "list" not in self._fresh:
            self.refresh_in_background()  # serve the stale value meanwhile
        return self._latest.get(key)

    def pinned(self, key: str, version: Any) -> Any:
        found = self._pinned.get((key, version), _MISSING)
        if found is not _MISSING:
            return found
        current = self.latest(key)
        if current is not None and getattr(current, "version", None) == version:
            return current
        if self._pinned_url is None or (key, version) in self._absent:
            return None
        done = threading.Event()
        self._fetcher.submit(("pinned", self.name, key, version),
                             lambda: self._fetch_pinned(key, version, done))
        done.wait(self.cold_wait)
        found = self._pinned.get((key, version), _MISSING)
        return None if found is _MISSING else found

    # -- the background side ------------------------------------------------------------
    def next_refresh(self) -> float:
        return self._next_refresh

    def refresh_in_background(self) -> None:
        self._next_refresh = time.monotonic() + self._ttl
        self._fetcher.submit(("list", self.name), self._fetch_list)

    def _fetch_list(self) -> None:
        self.fetches += 1
        status, body = self._fetcher.get_json(self._list_url)
        try:
            if status == 200:
                latest = dict(self._parse_list(body))
                self._latest = {**{k: v for k, v in self._latest.items() if k in latest},
                                **{k: v for k, v in latest.items() if v is not None}}
                self._fresh["list"] = True
                logger.debug("fallom: %s refreshed (%d entries)", self.name, len(self._latest))
            elif status == -1:
                logger.warning("fallom: %s: malformed JSON; keeping what was loaded", self.name)
            else:
                logger.debug("fallom: %s refresh failed (%s); serving what is cached",
                             self.name, status or "unreachable")
                self._next_refresh = time.monotonic() + min(self._ttl, 5.0)
        finally:
            self._loaded.set()

    def _fetch_pinned(self, key: str, version: Any, done: threading.Event) -> None:
        try:
            if self._pinned_url is None or self._parse_one is None:
                return
            status, body = self._fetcher.get_json(self._pinned_url(key, version))
            if status == 200:
                value = self._parse_one(body)
                if value is not None:
                    self._pinned[(key, version)] = value
            elif status == 404:
                self._absent[(key, version)] = True
        finally:
            done.set()
