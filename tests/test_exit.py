"""Nothing lost however the process ends: SIGTERM and multiprocessing children."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from concurrent.futures import ProcessPoolExecutor

import pytest

import fallom
from fallom.testing import view

from ._traces_server import TracesServer

POSIX = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork and POSIX signals")


@POSIX
def test_sigterm_drains_pending_spans_and_still_ends_by_sigterm(
        traces_server: TracesServer) -> None:
    traces_server.default = ("delay", 0.5)  # every batch takes half a second to accept
    code = textwrap.dedent(f"""
        import sys, time, fallom
        fallom.init(api_key="k", traces_url="{traces_server.url}", batch=True)
        for i in range(100):
            with fallom.span(f"s{{i}}"):
                pass
        print("ready", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert sorted(r["name"] for r in traces_server.records) == sorted(
        f"s{i}" for i in range(100))
    assert proc.stderr is not None
    assert "undelivered" not in proc.stderr.read()


@POSIX
def test_an_application_sigterm_handler_is_never_replaced() -> None:
    def mine(signum: int, frame: object) -> None:
        pass

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        fallom.init()
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


@POSIX
def test_handle_signals_false_leaves_sigterm_alone() -> None:
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        fallom.init(handle_signals=False)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        fallom.init()
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        fallom.init(handle_signals=False)  # and a re-init takes it back
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, previous)


def _spans(worker: int, count: int = 250) -> int:
    @fallom.trace_llm
    def call(i: int) -> int:
        return i

    for i in range(count):
        call(worker * 1000 + i)
    return os.getpid()


@POSIX
@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_a_process_pool_delivers_every_span_of_its_workers(
        traces_server: TracesServer, method: str) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    # every URL on loopback: a fork while a thread of the parent resolves a DNS name
    # (the default configs URL) can leave the child's resolver locked (a fork hazard)
    fallom.init(api_key="k", traces_url=traces_server.url, configs_url=traces_server.url,
                prompts_url=traces_server.url)
    if method == "forkserver":  # the child imports this module afresh: init it there too
        for name in ("FALLOM_TRACES_URL", "FALLOM_CONFIGS_URL", "FALLOM_PROMPTS_URL"):
            os.environ[name] = traces_server.url
        os.environ["FALLOM_API_KEY"] = "k"
    try:
        with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context(method),
                                 initializer=fallom.init if method == "forkserver" else None
                                 ) as pool:
            pids = set(pool.map(_spans, range(4)))
    finally:
        for name in ("FALLOM_API_KEY", "FALLOM_TRACES_URL", "FALLOM_CONFIGS_URL",
                     "FALLOM_PROMPTS_URL"):
            os.environ.pop(name, None)
    assert os.getpid() not in pids
    assert traces_server.wait_for(1000, timeout=30)
    inputs = sorted(view(r).input["i"] for r in traces_server.records)
    assert inputs == sorted(w * 1000 + i for w in range(4) for i in range(250))


@POSIX
def test_pool_map_workers_deliver_too(traces_server: TracesServer) -> None:
    fallom.init(api_key="k", traces_url=traces_server.url, configs_url=traces_server.url,
                prompts_url=traces_server.url)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(_spans, [0, 1])
        pool.close()
        pool.join()
    assert traces_server.wait_for(500)
    assert len(traces_server.records) == 500
