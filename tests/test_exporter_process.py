"""Whole processes: exit without flush, exit against a hanging server, fork, key leaks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Dict

import pytest

from fallom.testing import view

from ._traces_server import TracesServer, plain_body
from .test_exporter import gave_up_after
from .test_models import HANG_S

CANARY = "fallom-canary-key-7f3a9c"


def child_env(server: TracesServer, **env: str) -> Dict[str, str]:
    """A child's environment: every fallom URL on ``server`` (none off loopback), a key."""
    return {**os.environ, "FALLOM_API_KEY": CANARY, "FALLOM_TRACES_URL": server.url,
            "FALLOM_CONFIGS_URL": server.url, "FALLOM_PROMPTS_URL": server.url, **env}


def run(code: str, server: TracesServer, timeout: float = 60.0,
        **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          env=child_env(server, **env), capture_output=True, text=True,
                          timeout=timeout, check=False)


TRACE_5000 = """
    import fallom
    fallom.init()

    @fallom.trace_llm
    def call(i):
        return i

    for i in range(5000):
        call(i)
"""


def test_exit_without_flush_delivers_everything(traces_server: TracesServer) -> None:
    result = run(TRACE_5000, traces_server)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert sorted(view(r).input["i"] for r in traces_server.records) == list(range(5000))


def test_exit_against_a_hanging_server_is_bounded(traces_server: TracesServer) -> None:
    traces_server.default = ("hang",)  # holds each request unanswered for 60 s
    # no request or retry timeout ends before the server lets go: only the 2 s budget can
    code = TRACE_5000.replace("fallom.init()",
                              "fallom.init(export_timeout=600, export_retry_timeout=600)")
    try:  # HANG_S is short of the server's 60 s hold
        result = run(code, traces_server, timeout=HANG_S, FALLOM_SHUTDOWN_TIMEOUT="2")
    except subprocess.TimeoutExpired:
        pytest.fail("the exit waited on the hanging server instead of its 2 s budget")
    assert result.returncode == 0, result.stderr
    assert traces_server.wait_for_requests(1)
    assert traces_server.in_flight == 1  # it ended while the server still held its request
    assert len(traces_server.requests) == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert 1.0 < gave_up_after(lines[0]) <= 2.0  # FALLOM_SHUTDOWN_TIMEOUT, not the 5 s default
    assert "undelivered" in lines[0]
    traces_server.release()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_delivers_its_own_spans_and_none_twice(traces_server: TracesServer) -> None:
    code = """
        import os, fallom
        fallom.init(batch_interval=3600)

        @fallom.trace_llm
        def call(who, i):
            return i

        for i in range(50):
            call("parent-before-fork", i)
        pid = os.fork()
        if pid == 0:
            for i in range(30):
                call("child", i)
            ok = fallom.flush(10)
            os._exit(0 if ok else 3)
        for i in range(20):
            call("parent-after-fork", i)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert fallom.flush(10)
    """
    result = run(code, traces_server)
    assert result.returncode == 0, result.stderr
    who = [view(r).input["who"] for r in traces_server.records]
    assert who.count("parent-before-fork") == 50
    assert who.count("child") == 30
    assert who.count("parent-after-fork") == 20
    assert len({r["span_id"] for r in traces_server.records}) == 100


def test_the_api_key_never_leaks(traces_server: TracesServer) -> None:
    traces_server.then(("status", 401), ("status", 503), ("reset",),
                       ("status", 302, {"Location": "http://127.0.0.1:9/elsewhere"}))
    code = """
        import logging, fallom
        logging.basicConfig(level=logging.DEBUG)
        fallom.init(debug=True)

        @fallom.trace_llm
        def call(i):
            return i

        for i in range(4):
            call(i)
            fallom.flush(5)
        print(repr(fallom.tracing._runtime.STATE.settings))
        print(fallom.stats())
        for p in fallom.tracing._runtime.STATE.processors:
            print(repr(p), repr(getattr(p, "exporter", None)))
    """
    result = run(code, traces_server)
    assert result.returncode == 0, result.stderr
    assert "fallom" in result.stderr  # debug logging was really on
    assert CANARY not in result.stdout
    assert CANARY not in result.stderr
    for request in traces_server.requests:
        assert CANARY not in request["path"]
        assert CANARY.encode() not in plain_body(request)
        assert request["headers"]["Authorization"] == f"Bearer {CANARY}"
