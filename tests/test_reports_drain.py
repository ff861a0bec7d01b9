"""A/B assignment reports and custom metrics queued at shutdown are sent, not thrown away."""

from __future__ import annotations

import time

import fallom
from fallom import models

from ._config_server import ConfigServer

KEY = "drain-key"
AB = [{"model": "gpt-4o", "weight": 50}, {"model": "claude", "weight": 50}]


def _start(server: ConfigServer, **kwargs: object) -> None:
    server.add_config("agent", AB)
    fallom.init(KEY, server.url, server.url, server.url, cold_start_timeout=30.0, **kwargs)


def test_reports_queued_at_shutdown_are_delivered(config_server: ConfigServer) -> None:
    config_server.sessions_delay = 0.05  # each report takes a while: they queue up
    _start(config_server, shutdown_timeout=30.0)
    for n in range(5):
        models.get("agent", f"s-{n}")
    fallom.shutdown()  # returns once the queue is sent
    assert sorted(r["body"]["session_id"] for r in config_server.sessions) == [
        f"s-{n}" for n in range(5)]
    assert all(r["auth"] == f"Bearer {KEY}" for r in config_server.sessions)


def test_a_hanging_backend_costs_the_shutdown_budget_and_the_rest_is_counted(
        config_server: ConfigServer) -> None:
    config_server.sessions_delay = 60.0  # held until the server closes
    _start(config_server, shutdown_timeout=0.5)
    for n in range(5):
        models.get("agent", f"s-{n}")
    started = time.monotonic()
    fallom.shutdown()
    assert time.monotonic() - started < 20.0  # the budget, not the backend's hang
    reports = fallom.stats()["reports"]
    assert reports["dropped"]["shutdown"] + reports["dropped"]["unreachable"] >= 4
