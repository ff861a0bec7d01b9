"""models.get and session.get_model against a real local configs server."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Callable, Iterator, List

import pytest

import fallom
from fallom.experiments import _stores
from fallom.experiments._remote import Fetcher, RemoteStore

from ._config_server import ConfigServer

KEY = "cfg-key-123"
AB = [{"model": "gpt-4o", "weight": 50}, {"model": "claude", "weight": 50}]
HANG_S = 30.0  # a bound no healthy wait comes near, whatever the machine's load


def start(server: ConfigServer, **kwargs: Any) -> None:
    """init against ``server``; the cold wait is long enough that only a hang exhausts it,
    so a loaded machine cannot turn a first fetch into a fallback."""
    kwargs.setdefault("cold_start_timeout", HANG_S)
    fallom.init(api_key=KEY, configs_url=server.url, prompts_url=server.url,
                traces_url=server.url, **kwargs)


def wait_for(predicate: Any, timeout: float = HANG_S) -> bool:
    """Until ``predicate()`` holds (False after ``timeout``: a hang, not a slow machine)."""
    deadline = time.monotonic() + timeout
    event = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            return False
        event.wait(0.01)
    return True


@pytest.fixture
def make_store(config_server: ConfigServer) -> Iterator[Callable[..., RemoteStore]]:
    """A configs store against the test server, with a clock the test moves."""
    fetchers: List[Fetcher] = []

    def make(clock: Callable[[], float], ttl: float = 10.0) -> RemoteStore:
        fetchers.append(Fetcher(KEY))
        return RemoteStore(fetchers[-1], "configs", f"{config_server.url}/configs",
                           _stores.parse_configs, ttl=ttl, clock=clock)

    yield make
    for fetcher in fetchers:
        fetcher.stop()


def test_assignment_and_one_report_per_session(config_server: ConfigServer) -> None:
    config_server.add_config("agent", AB)
    start(config_server)
    models = {fallom.models.get("agent", f"s{i}") for i in range(50)}
    assert models == {"gpt-4o", "claude"}
    first = fallom.models.get("agent", "sticky")
    assert all(fallom.models.get("agent", "sticky") == first for _ in range(20))
    assert wait_for(lambda: len(config_server.sessions) == 51)
    report = [s for s in config_server.sessions if s["body"]["session_id"] == "sticky"]
    assert len(report) == 1
    assert report[0]["body"] == {"config_key": "agent", "config_version": 1,
                                 "session_id": "sticky", "assigned_model": first}
    assert report[0]["auth"] == f"Bearer {KEY}"


def test_missing_config_uses_the_fallback_and_reports_nothing(
    config_server: ConfigServer,
) -> None:
    start(config_server)
    assert fallom.models.get("nope", "s1", fallback="gpt-4o-mini") == "gpt-4o-mini"
    with pytest.raises(ValueError, match="'nope'"):
        fallom.models.get("nope", "s1")
    fallom.flush(1)
    assert config_server.sessions == []


def test_version_pinning_fetches_once(config_server: ConfigServer) -> None:
    config_server.add_config("agent", [{"model": "old", "weight": 100}])
    config_server.add_config("agent", [{"model": "new", "weight": 100}])
    start(config_server)
    assert fallom.models.get("agent", "s") == "new"
    for _ in range(10):
        assert fallom.models.get("agent", "s", version=1) == "old"
    assert config_server.count("/configs/agent/version/1") == 1
    assert fallom.models.get("agent", "s", version=9, fallback="fb") == "fb"
    with pytest.raises(ValueError, match="version 9"):
        fallom.models.get("agent", "s", version=9)


def test_session_get_model_targets_its_customer(config_server: ConfigServer) -> None:
    config_server.add_config("agent", [{"model": "base", "weight": 100},
                                       {"model": "vip", "weight": 0}],
                             targeting={"enabled": True, "individualTargets": [
                                 {"field": "customerId", "value": "u-vip", "variantIndex": 1}],
                                 "rules": [{"conditions": [{"field": "country",
                                                            "operator": "in",
                                                            "value": ["FR", "DE"]}],
                                            "variantIndex": 1}]})
    start(config_server)
    vip = fallom.session(config_key="agent", session_id="a", customer_id="u-vip")
    plain = fallom.session(config_key="agent", session_id="b", customer_id="u-1")

    async def ask() -> tuple:
        return (await vip.get_model(), await plain.get_model(),
                await plain.get_model(context={"country": "FR"}))

    assert asyncio.run(ask()) == ("vip", "base", "vip")


def test_server_down_at_cold_start_falls_back_quickly() -> None:
    # a cold wait past the test's own time limit: only the refused fetch can end it
    fallom.init(api_key=KEY, configs_url="http://127.0.0.1:9", prompts_url="http://127.0.0.1:9",
                cold_start_timeout=3600)
    assert fallom.models.get("agent", "s", fallback="fb") == "fb"


def test_hanging_server_costs_at_most_the_cold_wait(config_server: ConfigServer) -> None:
    config_server.failure = ("hang", None)  # held until the test ends
    # a request timeout past the test's time limit: only the 0.3 s cold wait can end a get
    start(config_server, cold_start_timeout=0.3, export_timeout=3600)
    assert fallom.models.get("agent", "s", fallback="fb") == "fb"
    assert fallom.models.get("agent", "s2", fallback="fb") == "fb"
    assert wait_for(lambda: config_server.count("/configs") == 1)  # the fetch, still held


def test_stale_values_survive_server_errors_and_ttl(config_server: ConfigServer,
                                                    make_store: Any) -> None:
    config_server.add_config("agent", [{"model": "v1", "weight": 100}])
    now = [1000.0]
    store = make_store(lambda: now[0], ttl=60)
    assert store.latest("agent").variants[0].model == "v1"
    fetches = store.fetches
    config_server.failure = ("status", 500)
    now[0] += 61  # expired: served stale at once, one refresh in the background
    assert store.latest("agent").variants[0].model == "v1"
    assert wait_for(lambda: store.fetches == fetches + 1)
    assert store.latest("agent").variants[0].model == "v1"  # 500: still the old value
    config_server.failure = None
    config_server.add_config("agent", [{"model": "v2", "weight": 100}])
    now[0] += 61
    store.latest("agent")
    assert wait_for(lambda: store.latest("agent").variants[0].model == "v2")


def test_a_config_removed_from_the_server_is_evicted(config_server: ConfigServer,
                                                     make_store: Any) -> None:
    config_server.add_config("agent", AB)
    now = [0.0]
    store = make_store(lambda: now[0])
    assert store.latest("agent") is not None
    del config_server.configs["agent"]
    now[0] += 11
    store.latest("agent")
    assert wait_for(lambda: store.latest("agent") is None)


def test_100_concurrent_cold_callers_cause_one_fetch(config_server: ConfigServer) -> None:
    config_server.add_config("agent", AB)
    start(config_server)
    barrier = threading.Barrier(100)
    results: List[str] = []

    def call(i: int) -> None:
        barrier.wait()
        results.append(fallom.models.get("agent", f"s{i}"))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 100
    assert config_server.count("/configs") == 1


@pytest.mark.parametrize(("body", "problem"), [
    (b"{not json", "malformed JSON"),
    (b'{"configs": [{"key": "agent", "version": 2}]}', "no variants"),
    (b'{"configs": [{"key": "agent", "version": 2, "variants": [{"model": "x", '
     b'"weight": "half"}]}]}', "non-numeric weight"),
    (b'{"configs": [{"key": "agent", "version": 2, "variants": [{"model": 7, '
     b'"weight": 100}]}]}', "no string model"),
    (b'{"configs": [{"key": "agent", "version": 2, "variants": [{"model": "x", '
     b'"weight": 100}], "targeting": {"individualTargets": ["oops"]}}]}',
     "individualTargets is not a list of objects"),
])
def test_malformed_versions_keep_the_previous_good_one(
    config_server: ConfigServer, caplog: pytest.LogCaptureFixture, body: bytes, problem: str,
    make_store: Any,
) -> None:
    config_server.add_config("agent", [{"model": "good", "weight": 100}])
    now = [0.0]
    store = make_store(lambda: now[0])
    assert store.latest("agent").variants[0].model == "good"
    config_server.raw_configs = body
    with caplog.at_level(logging.WARNING, logger="fallom"):
        for _ in range(3):
            now[0] += 11
            fetches = store.fetches
            store.latest("agent")
            assert wait_for(lambda: store.fetches > fetches)
    assert store.latest("agent").variants[0].model == "good"
    warnings = [r.getMessage() for r in caplog.records if problem in r.getMessage()]
    assert len(warnings) >= 1
    if problem != "malformed JSON":
        assert len(warnings) == 1  # once per key, version and problem
        assert "'agent'" in warnings[0]


def test_a_malformed_first_version_means_the_fallback(config_server: ConfigServer) -> None:
    config_server.raw_configs = b'{"configs": [{"key": "agent", "version": 1, "variants": []}]}'
    start(config_server)
    assert fallom.models.get("agent", "s", fallback="fb") == "fb"


def test_local_mode_never_fetches(config_server: ConfigServer) -> None:
    fallom.init(configs_url=config_server.url)
    assert fallom.models.get("agent", "s", fallback="fb") == "fb"
    assert config_server.hits == {}


def test_bad_arguments_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="session_id"):
        fallom.models.get("agent", None, fallback="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="config_key"):
        fallom.models.get(None, "s", fallback="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="version must be a whole number"):
        fallom.models.get("agent", "s", fallback="x", version="v2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="version must be a whole number"):
        fallom.models.get("agent", "s", fallback="x", version=-1)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_keeps_its_cache_and_can_fetch(config_server: ConfigServer) -> None:
    import subprocess
    import sys
    import textwrap

    config_server.add_config("agent", [{"model": "v1", "weight": 100}])
    config_server.add_config("agent", [{"model": "v2", "weight": 100}])
    code = textwrap.dedent(f"""
        import os, fallom
        fallom.init(api_key="k", configs_url="{config_server.url}",
                    prompts_url="{config_server.url}", traces_url="{config_server.url}")
        assert fallom.models.get("agent", "s") == "v2"
        pid = os.fork()
        if pid == 0:
            ok = fallom.models.get("agent", "s") == "v2"  # the inherited cache
            ok = ok and fallom.models.get("agent", "s", version=1) == "v1"  # a fetch of its own
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert config_server.count("/configs/agent/version/1") == 1
