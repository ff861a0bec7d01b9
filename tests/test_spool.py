"""The on-disk spool: nothing lost through backend outages, restarts and kill -9."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import List

import pytest

import fallom
from fallom.testing import view

from ._traces_server import TracesServer
from .test_models import wait_for

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX file locks")


@fallom.trace_llm
def call(i: int) -> int:
    return i


def inputs(server: TracesServer) -> List[int]:
    return sorted(view(r).input["i"] for r in server.records)


def test_an_outage_longer_than_the_retry_budget_loses_nothing(
        traces_server: TracesServer, tmp_path: Path) -> None:
    traces_server.default = ("status", 503)  # down
    fallom.init(api_key="k", traces_url=traces_server.url, batch=True, spool_dir=tmp_path,
                export_retry_timeout=0.3, batch_interval=0.1)
    for i in range(5_000):
        call(i)
    assert fallom.flush(20.0) is False  # nothing could be delivered...
    assert wait_for(lambda: fallom.stats()["spooled"] == 5_000, timeout=60)
    stats = fallom.stats()  # ...and nothing was dropped
    assert sum(stats["dropped"].values()) == 0
    traces_server.default = None  # back up
    assert traces_server.wait_for(5_000, timeout=60)
    assert inputs(traces_server) == list(range(5_000))  # each exactly once
    assert wait_for(lambda: fallom.stats()["replayed"] == 5_000)  # counted once acknowledged
    # the segment goes once its last batch is acknowledged
    assert wait_for(lambda: not any(p.suffix == ".seg" for p in tmp_path.iterdir()))


def test_a_full_queue_spools_instead_of_dropping(traces_server: TracesServer,
                                                 tmp_path: Path) -> None:
    traces_server.default = ("delay", 0.3)
    fallom.init(api_key="k", traces_url=traces_server.url, batch=True, spool_dir=tmp_path,
                max_queue_size=100)
    for i in range(2_000):  # a burst far beyond the queue
        call(i)
    assert fallom.stats()["dropped"]["queue_full"] == 0
    assert traces_server.wait_for(2_000, timeout=60)
    assert inputs(traces_server) == list(range(2_000))


def _child(url: str, spool: Path, *lines: str) -> str:
    """A child process's script: fallom with a spool, ``call(i)`` traced, then ``lines``."""
    return textwrap.dedent(f"""
        import os, sys, time, fallom
        fallom.init(api_key="k", traces_url="{url}", batch=True,
                    spool_dir={str(spool)!r}, export_retry_timeout=0.2, batch_interval=0.1,
                    handle_signals=False)

        @fallom.trace_llm
        def call(i):
            return i
    """) + "\n".join(lines) + "\n"


def test_kill_9_then_the_next_process_delivers(traces_server: TracesServer,
                                               tmp_path: Path) -> None:
    traces_server.default = ("status", 503)
    writer = subprocess.Popen([sys.executable, "-c", _child(
        traces_server.url, tmp_path, "for i in range(300): call(i)", "fallom.flush(10)",
        "print(fallom.stats()['spooled'], flush=True)", "time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "300"
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
    finally:
        if writer.poll() is None:
            writer.kill()
    traces_server.default = None
    segments = list(tmp_path.glob("*.seg"))
    assert segments
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in segments)
    readers = [subprocess.Popen([sys.executable, "-c", _child(
        traces_server.url, tmp_path, "deadline = time.time() + 20",
        "while time.time() < deadline and any(n.endswith('.seg') for n in os.listdir("
        f"{str(tmp_path)!r})): time.sleep(0.05)")]) for _ in range(2)]
    for reader in readers:  # two processes replay the same spool at once
        assert reader.wait(60) == 0
    assert inputs(traces_server) == list(range(300))  # all of them, none twice


def test_a_torn_last_record_is_skipped_not_the_segment(traces_server: TracesServer,
                                                       tmp_path: Path) -> None:
    good = [json.dumps({"config_key": "c", "session_id": "s", "trace_id": f"{i:032x}",
                        "span_id": f"{i + 1:016x}", "name": f"kept-{i}"}) for i in range(3)]
    (tmp_path / "00000000000000000001-1-abcd.seg").write_bytes(
        ("\n".join(good) + "\n" + '{"config_key": "c", "trunc').encode())
    fallom.init(api_key="k", traces_url=traces_server.url, batch=True, spool_dir=tmp_path)
    assert traces_server.wait_for(3, timeout=20)
    assert sorted(r["name"] for r in traces_server.records) == ["kept-0", "kept-1", "kept-2"]


def test_with_capture_off_no_content_reaches_the_disk(traces_server: TracesServer,
                                                      tmp_path: Path) -> None:
    traces_server.default = ("status", 503)
    fallom.init(api_key="k", traces_url=traces_server.url, batch=True, spool_dir=tmp_path,
                capture_content=False, export_retry_timeout=0.2)

    @fallom.trace_llm
    def secret(text: str) -> str:
        return "SECRET-ANSWER"

    secret("SECRET-QUESTION")
    fallom.flush(10.0)
    assert fallom.stats()["spooled"] == 1
    written = b"".join(p.read_bytes() for p in tmp_path.glob("*.seg"))
    assert written
    assert b"SECRET" not in written


def test_an_unwritable_spool_degrades_to_counted_drops(
        traces_server: TracesServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    traces_server.default = ("status", 503)
    fallom.init(api_key="k", traces_url=traces_server.url, batch=True,
                spool_dir=blocker / "spool", export_retry_timeout=0.2)
    for i in range(3):
        call(i)
    assert fallom.flush(10.0) is False
    for i in range(3):
        call(i)
    fallom.flush(10.0)
    stats = fallom.stats()
    assert stats["spooled"] == 0
    assert stats["dropped"]["retries_exhausted"] == 6
    assert len([r for r in caplog.records if "cannot write the spool" in r.getMessage()]) == 1


def test_the_spool_is_capped_and_counts_what_it_drops(traces_server: TracesServer,
                                                      tmp_path: Path) -> None:
    traces_server.default = ("status", 503)
    fallom.init(api_key="k", traces_url=traces_server.url, batch=True, spool_dir=tmp_path,
                spool_max_bytes=20_000, export_retry_timeout=0.2, max_batch_size=20)
    for i in range(400):
        call(i)
    fallom.flush(30.0)
    stats = fallom.stats()
    assert stats["dropped"]["spool_full"] > 0
    assert sum(p.stat().st_size for p in tmp_path.glob("*.seg")) <= 20_000 + 10_000
