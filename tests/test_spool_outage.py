"""The spool under an outage: overflow reaches the disk whatever the worker does, nothing
given up is lost while the spool has room, and the bookkeeping holds at the edges."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

import fallom
from fallom.testing import view

from ._traces_server import TracesServer
from .test_models import wait_for
from .test_spool import _child

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX file locks")


@fallom.trace_llm
def call(i: int) -> int:
    return i


def refused_url() -> str:
    """A loopback port nothing listens on: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def on_disk(spool: Path) -> List[Dict[str, Any]]:
    lines = b"".join(p.read_bytes() for p in sorted(spool.glob("*.seg"))).splitlines()
    return [json.loads(line) for line in lines]


def dropped(stats: Dict[str, Any]) -> Dict[str, int]:
    return {reason: count for reason, count in stats["dropped"].items() if count}


def test_overflow_reaches_the_spool_while_the_worker_is_stuck(
        traces_server: TracesServer, tmp_path: Path) -> None:
    traces_server.default = ("hang",)  # the worker's request never ends
    fallom.init(api_key="k", traces_url=traces_server.url, batch=True, spool_dir=tmp_path,
                max_queue_size=50)
    for i in range(600):
        call(i)
    assert traces_server.wait_for_requests(1)
    # two queues' worth are in flight or queued; all the rest is on disk while it hangs
    assert wait_for(lambda: fallom.stats()["spooled"] >= 500)
    assert len(on_disk(tmp_path)) == fallom.stats()["spooled"]
    assert not traces_server.released.is_set()
    assert dropped(fallom.stats()) == {}


def test_a_refusing_backend_loses_nothing_while_the_spool_has_room(
        traces_server: TracesServer, tmp_path: Path) -> None:
    fallom.init(api_key="k", traces_url=refused_url(), spool_dir=tmp_path, max_queue_size=50,
                export_retry_timeout=600)
    for i in range(600):
        call(i)
    # the worker retries one record for as long as the test runs; the overflow does not wait
    assert wait_for(lambda: fallom.stats()["spooled"] >= 550)
    assert dropped(fallom.stats()) == {}
    fallom.shutdown(0.5)  # out of time: what is left goes to the spool too
    assert fallom.stats()["spooled"] == 600
    assert dropped(fallom.stats()) == {}
    assert sorted(view(r).input["i"] for r in on_disk(tmp_path)) == list(range(600))


def test_a_500_is_spooled_not_dropped(traces_server: TracesServer, tmp_path: Path) -> None:
    traces_server.then(("status", 500), ("status", 500))
    fallom.init(api_key="k", traces_url=traces_server.url, batch=True, spool_dir=tmp_path)
    for i in range(10):
        call(i)
    assert fallom.flush(10.0) is False
    assert fallom.stats()["spooled"] == 10
    assert dropped(fallom.stats()) == {}
    assert traces_server.wait_for(10, timeout=20)  # replayed once the server answers


def _spool_child(url: str, spool: Path, *lines: str) -> List[str]:
    return [sys.executable, "-c", _child(url, spool, *lines)]


def test_the_next_process_drains_the_whole_spool_exactly_once(
        traces_server: TracesServer, tmp_path: Path) -> None:
    writer = subprocess.run(_spool_child(
        refused_url(), tmp_path, "for i in range(2000): call(i)", "fallom.flush(30)",
        "print(fallom.stats()['spooled'])"), capture_output=True, text=True, timeout=120)
    assert writer.stdout.strip() == "2000"
    assert "2000 undelivered spans wait in the spool" in writer.stderr  # said at exit
    reader = subprocess.Popen(_spool_child(
        traces_server.url, tmp_path, "sys.stdout.write('up\\n'); sys.stdout.flush()",
        "sys.stdin.readline()"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        assert traces_server.wait_for(2000, timeout=60)
        assert wait_for(lambda: not list(tmp_path.glob("*.seg")), timeout=20)
    finally:
        _, err = reader.communicate("\n", timeout=60)
    assert sorted(view(r).input["i"] for r in traces_server.records) == list(range(2000))
    assert "spool" not in err  # nothing left to say


def test_a_sealed_segment_is_counted_once_against_the_cap(
        traces_server: TracesServer, tmp_path: Path) -> None:
    traces_server.default = ("status", 503)
    fallom.init(api_key="k", traces_url=traces_server.url, batch=True, spool_dir=tmp_path,
                export_retry_timeout=0.1, spool_max_bytes=7_500_000)
    for i in range(12_000):  # about 6 MB: four sealed segments of 1.9 MB, under the cap
        call(i)
    fallom.flush(60.0)
    assert wait_for(lambda: fallom.stats()["spooled"] == 12_000, timeout=60)
    assert dropped(fallom.stats()) == {}
    assert len(on_disk(tmp_path)) == 12_000
    assert sum(p.stat().st_size for p in tmp_path.glob("*.seg")) < 7_500_000


def test_a_cap_smaller_than_a_batch_keeps_what_fits(
        traces_server: TracesServer, tmp_path: Path) -> None:
    traces_server.default = ("status", 503)
    fallom.init(api_key="k", traces_url=traces_server.url, batch=True, spool_dir=tmp_path,
                export_retry_timeout=0.1, spool_max_bytes=20_000)
    for i in range(400):  # one batch of ~200 KB
        call(i)
    fallom.flush(30.0)
    stats = fallom.stats()
    assert stats["spooled"] > 0
    assert stats["spooled"] + stats["dropped"]["spool_full"] == 400
    assert len(on_disk(tmp_path)) == stats["spooled"]
    assert sum(p.stat().st_size for p in tmp_path.glob("*.seg")) <= 20_000


def test_a_short_write_counts_only_whole_records(tmp_path: Path) -> None:
    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    child = subprocess.run(_spool_child(
        refused_url(), tmp_path, "for i in range(2000): call(i)", "fallom.flush(30)",
        "s = fallom.stats(); print(s['spooled'], sum(s['dropped'].values()))"),
        capture_output=True, text=True, timeout=120, preexec_fn=small_files)
    spooled, lost = map(int, child.stdout.split())
    assert 0 < spooled < 2000
    assert spooled + lost == 2000  # every span either kept or counted
    assert len(on_disk(tmp_path)) == spooled  # no torn record: every line parses
    assert "cannot write the spool" in child.stderr


def test_one_corrupt_line_costs_only_itself(traces_server: TracesServer,
                                            tmp_path: Path) -> None:
    good = [json.dumps({"config_key": "c", "session_id": "s", "trace_id": f"{i + 1:032x}",
                        "span_id": f"{i + 1:016x}", "name": f"kept-{i}"}) for i in range(99)]
    lines = [*good[:50], '{"config_key": "c", "name": broken', *good[50:]]
    (tmp_path / "00000000000000000001-1-abcd.seg").write_text("\n".join(lines) + "\n")
    fallom.init(api_key="k", traces_url=traces_server.url, batch=True, spool_dir=tmp_path)
    assert traces_server.wait_for(99, timeout=20)
    assert wait_for(lambda: fallom.stats()["dropped"]["spool_corrupt"] == 1)
    assert len(traces_server.records) == 99
