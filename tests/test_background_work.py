"""Background work with priorities and bounds: reports never starve a fetch."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import pytest

import fallom
from fallom.experiments import _stores

from ._config_server import ConfigServer
from .test_models import KEY, start, wait_for


@pytest.fixture
def slow_sessions(config_server: ConfigServer) -> ConfigServer:
    config_server.sessions_delay = 0.2  # every POST /sessions takes 200 ms
    config_server.add_config("agent", [{"model": "v1-a", "weight": 50},
                                       {"model": "v1-b", "weight": 50}])
    config_server.add_config("agent", [{"model": "v2", "weight": 100}])
    config_server.add_prompt("greet", "v1 system", "Hi {{name}}")
    config_server.add_prompt("greet", "v2 system", "Hello {{name}}")
    return config_server


def test_a_pinned_fetch_goes_ahead_of_thousands_of_reports(slow_sessions: ConfigServer) -> None:
    start(slow_sessions)
    for n in range(3_000):  # 3,000 new sessions: 10 minutes of reports at 200 ms each
        assert fallom.models.get("agent", f"s{n}") == "v2"
    # each answer must arrive within the 1 s cold wait (else: ValueError, no fallback),
    # which only a fetch queued ahead of the reports can do
    assert fallom.models.get("agent", "pinned", version=1) in ("v1-a", "v1-b")
    assert fallom.prompts.get("greet", variables={"name": "A"}, version=1).user == "Hi A"
    assert slow_sessions.count("/configs/agent/version/1") == 1
    assert slow_sessions.count("/prompts/greet/version/1") == 1


def test_a_config_change_shows_while_reports_are_queued(slow_sessions: ConfigServer) -> None:
    start(slow_sessions, cache_ttl=0.5)
    for n in range(2_000):
        fallom.models.get("agent", f"s{n}")
    slow_sessions.add_config("agent", [{"model": "v3", "weight": 100}])
    assert wait_for(lambda: fallom.models.get("agent", "after") == "v3", timeout=5.0)


def test_the_report_queue_is_bounded_and_counts_its_drops(config_server: ConfigServer) -> None:
    config_server.sessions_delay = 30  # the first report hangs; the rest queue up
    config_server.add_config("agent", [{"model": "m", "weight": 100}])
    start(config_server)
    began = time.monotonic()
    for n in range(10_100):
        fallom.models.get("agent", f"s{n}")
    assert time.monotonic() - began < 10.0  # never waits on the reports
    dropped = fallom.stats()["reports"]["dropped"]["queue_full"]
    assert 99 <= dropped <= 100  # 10,000 queued (one in flight), the rest counted
    config_server.released.set()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_an_idle_fetcher_sleeps(config_server: ConfigServer) -> None:
    config_server.add_config("agent", [{"model": "m", "weight": 100}])
    start(config_server, cache_ttl=3600)
    assert fallom.models.get("agent", "s") == "m"
    experiments = _stores.current()
    assert experiments is not None
    thread = experiments.fetcher._thread
    assert wait_for(lambda: config_server.count("/prompt-ab-tests") >= 1)

    before = _settled(thread)  # the first fetches' replies are handled, the thread is idle
    threading.Event().wait(0.5)
    assert _switches(thread) - before <= 2  # a 10 ms poll would be about 50


def test_no_stores_means_no_wakeups(config_server: ConfigServer) -> None:
    from fallom.experiments._remote import Fetcher

    fetcher = Fetcher(KEY)
    try:
        before = _switches(fetcher._thread)
        threading.Event().wait(0.3)
        assert _switches(fetcher._thread) - before <= 1
    finally:
        fetcher.stop()


def _settled(thread: Any) -> int:
    """The thread's switch count once it stopped changing for 0.1 s (at most 5 s)."""
    previous, deadline = -1, time.monotonic() + 5
    while time.monotonic() < deadline:
        current = _switches(thread)
        if current == previous:
            return current
        previous = current
        threading.Event().wait(0.1)
    raise AssertionError("the thread never went idle")


def _switches(thread: Any) -> int:
    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc")
    with open(f"/proc/self/task/{thread.native_id}/status") as status:
        for line in status:
            if line.startswith("voluntary_ctxt_switches"):
                return int(line.split()[1])
    raise AssertionError("no context switch count")
