"""Background work with priorities and bounds: reports never starve a fetch."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import pytest

import fallom
from fallom.experiments import _stores

from ._config_server import HOLD_S, ConfigServer
from .test_models import HANG_S, KEY, start, wait_for


@pytest.fixture
def held_reports(config_server: ConfigServer) -> ConfigServer:
    """A server that holds every report (POST /sessions) unanswered until the test ends."""
    config_server.sessions_delay = HOLD_S
    config_server.add_config("agent", [{"model": "v1-a", "weight": 50},
                                       {"model": "v1-b", "weight": 50}])
    config_server.add_config("agent", [{"model": "v2", "weight": 100}])
    config_server.add_prompt("greet", "v1 system", "Hi {{name}}")
    config_server.add_prompt("greet", "v2 system", "Hello {{name}}")
    return config_server


def test_a_pinned_fetch_goes_ahead_of_thousands_of_reports(held_reports: ConfigServer) -> None:
    start(held_reports, export_timeout=HOLD_S)  # a report ends only when the server answers
    for n in range(3_000):  # 3,000 new sessions: 3,000 reports behind one that never ends
        assert fallom.models.get("agent", f"s{n}") == "v2"
    # an answer comes within the cold wait (else: ValueError, no fallback), which only a
    # fetch that waits on no report can give
    assert fallom.models.get("agent", "pinned", version=1) in ("v1-a", "v1-b")
    assert fallom.prompts.get("greet", variables={"name": "A"}, version=1).user == "Hi A"
    assert held_reports.count("/configs/agent/version/1") == 1
    assert held_reports.count("/prompts/greet/version/1") == 1
    assert held_reports.sessions == []  # the reports were still held all along


def test_a_config_change_shows_while_reports_are_queued(held_reports: ConfigServer) -> None:
    start(held_reports, cache_ttl=0.5, export_timeout=HOLD_S)
    for n in range(2_000):
        fallom.models.get("agent", f"s{n}")
    held_reports.add_config("agent", [{"model": "v3", "weight": 100}])
    assert wait_for(lambda: fallom.models.get("agent", "after") == "v3")
    assert held_reports.sessions == []


def test_the_report_queue_is_bounded_and_counts_its_drops(held_reports: ConfigServer) -> None:
    # the first report never ends while the test runs; the rest queue up
    start(held_reports, export_timeout=HOLD_S)
    for n in range(10_100):
        fallom.models.get("agent", f"s{n}")
    assert held_reports.sessions == []  # every call returned while the reports were held
    dropped = fallom.stats()["reports"]["dropped"]["queue_full"]
    assert 99 <= dropped <= 100  # 10,000 queued (one in flight), the rest counted


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
        before = _settled(fetcher._thread)  # started and waiting, whatever the machine's load
        threading.Event().wait(0.3)
        assert _switches(fetcher._thread) - before <= 1
    finally:
        fetcher.stop()


def _settled(thread: Any) -> int:
    """The thread's switch count once it stopped changing for 0.1 s (at most ``HANG_S``)."""
    previous, deadline = -1, time.monotonic() + HANG_S
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
