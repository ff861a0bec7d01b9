"""Configs and prompts from the Fallom servers, served from memory.

Callers never wait on the network once a cache is warm: a stale value is
served at once while one background refresh runs; server errors and
timeouts keep the last good value. Only a cold cache makes a caller wait,
and only for ``cold_wait`` seconds (default 1), after which it falls back.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Callable, Deque, Dict, Hashable, Iterable, List, Optional, Set, Tuple

import cachetools
import requests

from fallom.infra._counters import Stats
from fallom.infra._fork import register
from fallom.infra._guard import logger, report_internal_error
from fallom.tracing._suppress import suppress_here

__all__ = ["REPORTS", "Fetcher", "RemoteStore", "Reporter"]

_MISSING = object()
Task = Tuple[Hashable, ...]


class Fetcher:
    """Fetches configs and prompts on one daemon thread, urgent work first.

    A fetch a caller waits on (a pinned version, a cold store) goes ahead of
    routine list refreshes; assignment reports go through a :class:`Reporter`
    of their own, so they never delay either. Every queue is bounded, and the
    thread sleeps until the next refresh is due or work arrives.
    """

    MAX_PENDING = 1024

    def __init__(self, api_key: str, timeout: float = 5.0) -> None:
        self._api_key = api_key
        self.timeout = timeout
        self._stores: List[RemoteStore] = []
        self.reporter = Reporter(self)
        self.after_fork()
        register(self)

    def _after_fork(self) -> None:
        if not self._stop.is_set():
            self.after_fork()

    def after_fork(self) -> None:
        """A fresh thread, queues and connections (a forked child inherits none that work)."""
        self._urgent: Deque[Tuple[Task, Callable[[], None]]] = collections.deque()
        self._routine: Deque[Tuple[Task, Callable[[], None]]] = collections.deque()
        self._pending: Set[Task] = set()
        self._cond = threading.Condition(threading.Lock())
        self._session = _new_session()
        self._stop = threading.Event()
        self.reporter.after_fork()
        for store in self._stores:
            store.after_fork()
        self._thread = threading.Thread(target=self._run, name="fallom-fetch", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return "Fetcher()"

    def get_json(self, url: str) -> Tuple[int, Any]:
        """(status, parsed body or None); (0, None) when the server cannot be reached."""
        try:
            response = self._session.get(url, headers=self.headers(), allow_redirects=False,
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

    def headers(self) -> Dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"}

    def submit(self, task: Task, work: Callable[[], None], *, urgent: bool = False) -> bool:
        """Queue ``work`` unless the same task is queued (100 callers, one fetch) or too
        much is; urgent work goes first. False when it was not queued."""
        with self._cond:
            if task in self._pending:
                return True
            if len(self._pending) >= self.MAX_PENDING:
                return False
            self._pending.add(task)
            (self._urgent if urgent else self._routine).append((task, work))
            self._cond.notify()
        return True

    def watch(self, store: RemoteStore) -> None:
        with self._cond:
            self._stores.append(store)
            self._cond.notify()  # wake up to schedule its refreshes

    def stop(self, deadline: float = 0.0) -> None:
        """Stop fetching; queued reports are still sent until ``deadline`` (monotonic)."""
        self._stop.set()
        self.reporter.stop(deadline)
        with self._cond:
            self._cond.notify()

    def _next(self) -> Optional[Tuple[Task, Callable[[], None]]]:
        """The next piece of work, or None when a refresh may be due."""
        with self._cond:
            while not self._stop.is_set():
                if self._urgent:
                    return self._urgent.popleft()
                if self._routine:
                    return self._routine.popleft()
                due = min((s.next_refresh() for s in self._stores), default=None)
                if due is not None and due <= time.monotonic():
                    return None
                self._cond.wait(None if due is None else due - time.monotonic())
            return None

    def _run(self) -> None:
        while not self._stop.is_set():
            suppress_here()
            item = self._next()
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
                with self._cond:
                    self._pending.discard(task)


class Reporter:
    """``POST /sessions`` reports: a bounded queue and a thread of their own.

    Fire and forget: a full queue drops the newest report and counts it.
    """

    MAX_QUEUED = 10_000

    def __init__(self, fetcher: Fetcher) -> None:
        self._fetcher = fetcher
        self.after_fork()

    def after_fork(self) -> None:
        self._queue: Deque[Tuple[str, Any]] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._thread: Optional[threading.Thread] = None
        self._stopped = False
        self._deadline = 0.0  # once stopped: what is queued is sent until then (monotonic)
        self._session: Optional[requests.Session] = None

    def post(self, url: str, payload: Any) -> None:
        with self._cond:
            if self._stopped:
                return
            if len(self._queue) >= self.MAX_QUEUED:
                REPORTS.drop("queue_full")
                return
            self._queue.append((url, payload))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fallom-report",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def stop(self, deadline: float = 0.0) -> None:
        """Take no more posts; what is queued is still sent until ``deadline``
        (``time.monotonic()``), and what is left then is dropped (``shutdown``)."""
        with self._cond:
            self._stopped = True
            self._deadline = deadline
            self._cond.notify()

    def join(self, timeout: float) -> None:
        """Wait at most ``timeout`` seconds for what is queued to be sent; what is still
        queued then is dropped and counted (``shutdown``) at once."""
        thread = self._thread
        if thread is not None and timeout > 0:
            thread.join(timeout)
        with self._cond:
            REPORTS.drop("shutdown", len(self._queue))
            self._queue.clear()

    def _run(self) -> None:
        session = _new_session()
        while True:
            with self._cond:
                while not self._queue and not self._stopped:
                    self._cond.wait()
                left = self._deadline - time.monotonic()
                if self._stopped and (not self._queue or left <= 0):
                    REPORTS.drop("shutdown", len(self._queue))
                    self._queue.clear()
                    return
                url, payload = self._queue.popleft()
                wait = min(self._fetcher.timeout, left) if self._stopped \
                    else self._fetcher.timeout
            suppress_here()
            try:
                session.post(url, json=payload, headers=self._fetcher.headers(),
                             allow_redirects=False, timeout=(min(2.0, wait), wait)).close()
                REPORTS.add("sent")
            except requests.RequestException as exc:
                REPORTS.drop("unreachable")
                logger.debug("fallom: cannot post to %s: %s", url, type(exc).__name__)


def _new_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxies or .netrc credentials for our endpoints
    return session


REPORTS = Stats()  # assignment reports, over the life of the process


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
        self._fresh_until = -1.0  # by ``clock``: the list is served without a refresh until then
        self._latest: Dict[str, Any] = {}
        self._pinned: cachetools.LRUCache[Tuple[str, Any], Any] = cachetools.LRUCache(4096)
        self._absent: cachetools.TTLCache[Tuple[str, Any], bool] = cachetools.TTLCache(
            4096, ttl, timer=clock)
        self._lock = threading.Lock()  # cachetools caches are not thread-safe
        self._waits: Dict[Tuple[str, Any], threading.Event] = {}
        self._loaded = threading.Event()
        self._next_refresh = 0.0
        self.fetches = 0
        fetcher.watch(self)

    def after_fork(self) -> None:
        """A lock a parent's thread held at fork time would never be released here."""
        self._lock = threading.Lock()
        self._waits = {}

    # -- the caller's side: memory only, except a bounded wait when cold -------------
    @property
    def loaded(self) -> bool:
        """The first list fetch has ended: ``latest`` answers from memory, never waiting."""
        return self._loaded.is_set()

    def latest(self, key: str) -> Any:
        if not self._loaded.is_set():
            self.refresh_in_background(urgent=True)  # a caller is waiting: ahead of routine
            self._loaded.wait(self.cold_wait)
        elif self._clock() >= self._fresh_until:
            self.refresh_in_background()  # serve the stale value meanwhile
        return self._latest.get(key)

    def pinned(self, key: str, version: Any) -> Any:
        wanted = (key, version)
        with self._lock:
            found = self._pinned.get(wanted, _MISSING)
            absent = wanted in self._absent
        if found is not _MISSING:
            return found
        current = self._latest.get(key) if self._loaded.is_set() else None
        if current is not None and getattr(current, "version", None) == version:
            return current
        if self._pinned_url is None or absent:
            return None
        with self._lock:
            done = self._waits.get(wanted)
            if done is None:  # the first caller queues the fetch; the others wait on it too
                done = self._waits[wanted] = threading.Event()
                if not self._fetcher.submit(("pinned", self.name, key, version),
                                            lambda: self._fetch_pinned(key, version, done),
                                            urgent=True):
                    del self._waits[wanted]
                    return None
        done.wait(self.cold_wait)
        with self._lock:
            found = self._pinned.get(wanted, _MISSING)
        return None if found is _MISSING else found

    # -- the background side ------------------------------------------------------------
    def next_refresh(self) -> float:
        return self._next_refresh

    def refresh_in_background(self, urgent: bool = False) -> None:
        self._next_refresh = time.monotonic() + self._ttl
        self._fetcher.submit(("list", self.name), self._fetch_list, urgent=urgent)

    def _fetch_list(self) -> None:
        self.fetches += 1
        status, body = self._fetcher.get_json(self._list_url)
        try:
            if status == 200:
                latest = dict(self._parse_list(body))
                self._latest = {**{k: v for k, v in self._latest.items() if k in latest},
                                **{k: v for k, v in latest.items() if v is not None}}
                self._fresh_until = self._clock() + self._ttl
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
                    with self._lock:
                        self._pinned[(key, version)] = value
            elif status == 404:
                with self._lock:
                    self._absent[(key, version)] = True
        finally:
            with self._lock:
                self._waits.pop((key, version), None)
            done.set()
