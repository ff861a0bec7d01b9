"""A signal during an exit drain: SIGTERM waits for the drain, Ctrl-C ends it, pools lose nothing.

Each child prints ``draining`` from the atexit callback that runs just before
fallom's drain; the test signals it once it said so and the server has seen
the drain's requests arrive.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import textwrap
from typing import Iterator

import pytest

from fallom.testing import view

from ._traces_server import TracesServer
from .test_exporter_process import child_env

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork and POSIX signals")

DRAIN_2000 = """
    import atexit, fallom
    fallom.init(batch=True)

    @fallom.trace_llm
    def call(i):
        return i

    for i in range(2000):
        call(i)
    atexit.register(print, "draining", flush=True)  # runs first: fallom's drain comes next
"""


@contextlib.contextmanager
def child(code: str, server: TracesServer, **env: str) -> Iterator[subprocess.Popen[str]]:
    """``code`` running in a fresh interpreter against ``server``; killed if the test fails."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)],
                            env=child_env(server, **env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def signal_in_drain(proc: subprocess.Popen[str], server: TracesServer, signum: int,
                    requests: int = 1) -> None:
    """Send ``signum`` once the child's exit drain is under way."""
    assert proc.stdout is not None
    assert proc.stdout.readline() == "draining\n"
    assert server.wait_for_requests(requests, timeout=60)
    proc.send_signal(signum)


def delivered(server: TracesServer) -> list[int]:
    return sorted(view(r).input["i"] for r in server.records)


IN_A_THREAD = """
    import threading
    init_thread = threading.Thread(target=fallom.init, kwargs={"batch": True})
    init_thread.start()
    init_thread.join()
"""


@pytest.mark.parametrize("init_in", ["main thread", "another thread"])
def test_sigterm_during_the_exit_drain_waits_for_it_then_ends_the_process(
        traces_server: TracesServer, init_in: str) -> None:
    traces_server.default = ("delay", 0.5)  # four batches, one after another: two seconds
    code = DRAIN_2000 if init_in == "main thread" else textwrap.dedent(DRAIN_2000).replace(
        "fallom.init(batch=True)\n", textwrap.dedent(IN_A_THREAD))
    with child(code, traces_server, FALLOM_SHUTDOWN_TIMEOUT="30") as proc:
        signal_in_drain(proc, traces_server, signal.SIGTERM, requests=2)
        _, err = proc.communicate(timeout=90)
    assert proc.returncode == -signal.SIGTERM
    assert delivered(traces_server) == list(range(2000))
    assert err == ""


def test_sigterm_during_a_drain_past_its_bound_gives_up_at_the_bound_and_says_so(
        traces_server: TracesServer) -> None:
    traces_server.default = ("hang",)
    with child(DRAIN_2000, traces_server, FALLOM_SHUTDOWN_TIMEOUT="2") as proc:
        signal_in_drain(proc, traces_server, signal.SIGTERM)
        _, err = proc.communicate(timeout=90)
    assert proc.returncode == -signal.SIGTERM
    said = [line for line in err.splitlines() if "undelivered" in line]
    assert len(said) == 1, err
    assert re.match(r"fallom: gave up delivering after 2 s; 2000 spans undelivered\b", said[0])


def test_an_application_sigterm_handler_keeps_sigterm_during_the_drain(
        traces_server: TracesServer) -> None:
    traces_server.default = ("delay", 0.5)
    code = textwrap.dedent(DRAIN_2000) + textwrap.dedent("""
        import signal
        signal.signal(signal.SIGTERM, lambda *_: print("application handler", flush=True))
    """)
    with child(code, traces_server, FALLOM_SHUTDOWN_TIMEOUT="30") as proc:
        signal_in_drain(proc, traces_server, signal.SIGTERM, requests=2)
        out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0  # the application's handler chose not to end the process
    assert out == "application handler\n"
    assert delivered(traces_server) == list(range(2000))
    assert err == ""


def test_ctrl_c_during_the_exit_drain_ends_it_at_once_with_one_line(
        traces_server: TracesServer) -> None:
    traces_server.default = ("hang",)
    with child(DRAIN_2000, traces_server, FALLOM_SHUTDOWN_TIMEOUT="60") as proc:
        signal_in_drain(proc, traces_server, signal.SIGINT)
        _, err = proc.communicate(timeout=40)  # far inside the 60 s the drain had
    assert proc.returncode == 0  # the program itself had finished
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert re.fullmatch(r"fallom: .*\b2000 spans undelivered", lines[0]), lines[0]


@pytest.mark.timeout(300)
def test_a_pool_that_terminates_its_workers_loses_none_of_their_spans(
        traces_server: TracesServer) -> None:
    # Pool.__exit__ calls terminate(): workers that got the end-of-work sentinel are
    # already draining at their exit when its SIGTERM arrives
    traces_server.default = ("delay", 0.3)
    code = """
        import multiprocessing, fallom
        fallom.init(batch=True)

        @fallom.trace_llm
        def call(i):
            return i

        def traced(i):
            return call(i)

        if __name__ == "__main__":
            with multiprocessing.get_context("fork").Pool(4) as pool:
                pool.map(traced, range(1000))
    """
    with child(code, traces_server, FALLOM_SHUTDOWN_TIMEOUT="30") as proc:
        _, err = proc.communicate(timeout=240)  # a hang, not a loaded machine
    assert proc.returncode == 0, err
    assert delivered(traces_server) == list(range(1000))
    assert err == ""
