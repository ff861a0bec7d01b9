"""The HTTP exporter against a real local server that fails on command."""

from __future__ import annotations

import gzip
import json
import re
import time
from typing import Any, List

import pytest

import fallom
from fallom.exporters._http import HttpExporter, retry_after_seconds
from fallom.testing import view

from ._records import run_in_threads
from ._traces_server import TracesServer, plain_body
from .test_models import HANG_S

KEY = "test-key-0123"
# requests and their retries that only the flush or shutdown budget under test can end
NO_END_BUT_THE_BUDGET = {"export_timeout": 600.0, "export_retry_timeout": 600.0}


@fallom.trace_llm
def call(i: int) -> int:
    return i


def start(server: TracesServer, **kwargs: Any) -> None:
    fallom.init(api_key=KEY, traces_url=server.url, **kwargs)


def gave_up_after(said: str) -> float:
    """The budget a "gave up delivering after N s" line names: what was left of it when the
    processor's shutdown began, so 1.99999 for 2 on a loaded machine."""
    found = re.search(r"fallom: gave up delivering after ([0-9.]+) s; ", said)
    assert found is not None, said
    return float(found.group(1))


def test_bare_records_until_the_server_says_it_takes_batches(
        traces_server: TracesServer) -> None:
    start(traces_server, compress=True)  # gzip on loopback too, as across a network
    call(1)
    assert fallom.flush(5.0) is True
    first = traces_server.requests[0]
    assert first["path"] == "/v1/traces"
    assert first["headers"]["Authorization"] == f"Bearer {KEY}"
    assert first["headers"]["Content-Type"] == "application/json"
    assert "Content-Encoding" not in first["headers"]
    assert view(json.loads(first["body"])).input == {"i": 1}  # one bare record
    call(2)
    call(3)
    assert fallom.flush(5.0) is True
    (second,) = traces_server.requests[1:]  # the reply said "batch, gzip"
    assert second["headers"]["Content-Encoding"] == "gzip"
    body = json.loads(gzip.decompress(second["body"]))
    assert [view(r).input for r in body["traces"]] == [{"i": 2}, {"i": 3}]
    assert fallom.stats()["sent"] == 3


@pytest.mark.parametrize(("ingest", "batched", "gzipped"), [
    (None, False, False), ("batch", True, False), ("GZIP", False, True),
    (" gzip ,batch", True, True), ("something-else", False, False)])
def test_each_ingest_token_counts_alone(ingest: Any, batched: bool, gzipped: bool) -> None:
    server = TracesServer(ingest=ingest)
    try:
        start(server, compress=True)
        call(0)
        assert fallom.flush(5.0) is True
        for i in range(1, 4):
            call(i)
        assert fallom.flush(5.0) is True
        later = server.requests[1:]
        assert len(later) == (1 if batched else 3)
        for request in later:
            assert ("Content-Encoding" in request["headers"]) is gzipped
            body = gzip.decompress(request["body"]) if gzipped else request["body"]
            assert ("traces" in json.loads(body)) is batched
        assert sorted(view(r).input["i"] for r in server.records) == [0, 1, 2, 3]
    finally:
        server.close()


@pytest.mark.parametrize("compress", [None, False])
def test_no_gzip_to_this_machine_unless_asked(traces_server: TracesServer,
                                              compress: Any) -> None:
    start(traces_server, compress=compress)  # the server says "batch, gzip"
    for i in range(3):
        call(i)
        assert fallom.flush(5.0) is True
    batches = traces_server.requests[1:]
    assert len(batches) == 2
    for request in batches:
        assert "Content-Encoding" not in request["headers"]
        assert "traces" in json.loads(request["body"])  # batches all the same


@pytest.mark.parametrize(("url", "compress", "gzips"), [
    ("https://traces.example.com", None, True), ("http://127.0.0.1:9", None, False),
    ("http://localhost:9", None, False), ("http://[::1]:9", None, False),
    ("http://127.0.0.1:9", True, True), ("https://traces.example.com", False, False)])
def test_gzip_is_for_servers_across_a_network(url: str, compress: Any, gzips: bool) -> None:
    assert HttpExporter(url, KEY, compress=compress).may_compress is gzips


@pytest.mark.parametrize("forced", [True, False])
def test_init_batch_forces_either_mode(forced: bool) -> None:
    server = TracesServer(ingest=None if forced else "batch, gzip")
    try:
        start(server, batch=forced, compress=True)
        for i in range(3):
            call(i)
        assert fallom.flush(5.0) is True
        assert len(server.requests) == (1 if forced else 3)
        assert ("Content-Encoding" in server.requests[0]["headers"]) is forced
    finally:
        server.close()


def test_a_server_that_stops_advertising_gets_bare_records_again() -> None:
    server = TracesServer()
    try:
        start(server)
        call(0)
        assert fallom.flush(5.0)
        server.ingest = None  # e.g. the URL now reaches the Fallom cloud
        call(1)
        call(2)
        assert fallom.flush(5.0)  # one batch, whose reply no longer advertises
        call(3)
        call(4)
        assert fallom.flush(5.0)
        assert [("traces" in json.loads(plain_body(r))) for r in server.requests] == \
            [False, True, False, False]
    finally:
        server.close()


def test_8_threads_x_1000_spans_through_failures_arrive_exactly_once(
    traces_server: TracesServer,
) -> None:
    traces_server.then(("status", 503), ("status", 429, {"Retry-After": "1"}), ("reset",),
                       ("status", 502), ("status", 504))
    start(traces_server, max_batch_size=256)

    def work(t: int) -> None:
        for i in range(1000):
            call(t * 1000 + i)

    run_in_threads(work, 8)
    assert fallom.flush(30.0) is True
    inputs = [view(r).input["i"] for r in traces_server.records]
    assert len(inputs) == 8000
    assert sorted(inputs) == list(range(8000))
    stats = fallom.stats()
    assert stats["sent"] == 8000
    assert stats["retried"] >= 5
    assert sum(stats["dropped"].values()) == 0


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retryable_statuses_are_retried(traces_server: TracesServer, status: int) -> None:
    traces_server.then(("status", status))
    start(traces_server)
    call(1)
    assert fallom.flush(10.0) is True
    assert len(traces_server.requests) == 2
    assert len(traces_server.records) == 1
    assert fallom.stats()["retried"] == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 500, 501])
def test_other_statuses_are_dropped_without_retry(
    traces_server: TracesServer, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    traces_server.then(("status", status), ("status", status))
    start(traces_server)
    call(1)
    assert fallom.flush(5.0) is False
    call(2)
    assert fallom.flush(5.0) is False
    assert len(traces_server.requests) == 2
    assert fallom.stats()["dropped"]["http_status"] == 2
    logged = [r for r in caplog.records if str(status) in r.getMessage()]
    assert len(logged) == 1  # once per status


def test_a_traces_url_given_with_its_path_gets_a_hint(
        traces_server: TracesServer, caplog: pytest.LogCaptureFixture) -> None:
    traces_server.then(("status", 404))  # what a server answers for /v1/traces/v1/traces
    fallom.init(api_key=KEY, traces_url=traces_server.url + "/v1/traces")
    call(1)
    assert fallom.flush(5.0) is False
    assert traces_server.requests[0]["path"] == "/v1/traces/v1/traces"
    assert "without /v1/traces" in caplog.text


def test_connection_reset_is_retried(traces_server: TracesServer) -> None:
    traces_server.then(("reset",), ("reset",))
    start(traces_server)
    call(1)
    assert fallom.flush(10.0) is True
    assert len(traces_server.requests) == 3
    assert len(traces_server.records) == 1


def test_retry_after_is_honoured(traces_server: TracesServer) -> None:
    traces_server.then(("status", 429, {"Retry-After": "1"}))
    start(traces_server)
    call(1)
    assert fallom.flush(10.0) is True
    first, second = traces_server.requests
    assert second["at"] - first["at"] >= 0.95


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:05 GMT", now=1445412480.0) == 5.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412485.0) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_redirects_are_not_followed_with_the_key(traces_server: TracesServer) -> None:
    other = TracesServer()
    try:
        traces_server.then(("status", 307, {"Location": other.url + "/v1/traces"}))
        start(traces_server)
        call(1)
        assert fallom.flush(5.0) is False
        assert other.requests == []
        assert fallom.stats()["dropped"]["http_status"] == 1
    finally:
        other.close()


def test_flush_against_a_hanging_server_honours_its_timeout(traces_server: TracesServer) -> None:
    traces_server.default = ("hang",)
    start(traces_server, **NO_END_BUT_THE_BUDGET)
    call(1)
    assert traces_server.wait_for_requests(1)
    assert fallom.flush(1.0) is False
    assert traces_server.in_flight == 1  # returned while the server still held the request
    assert len(traces_server.requests) == 1
    traces_server.release()


def test_shutdown_during_a_long_backoff_gives_up_at_once_and_says_so(
        traces_server: TracesServer, capfd: pytest.CaptureFixture[str]) -> None:
    traces_server.then(("status", 503, {"Retry-After": "120"}))
    start(traces_server, **NO_END_BUT_THE_BUDGET)
    call(1)
    assert traces_server.wait_for_requests(1)
    began = time.monotonic()
    fallom.shutdown(60.0)
    # a retry 120 s away cannot happen within 60 s: given up at once, not after the 60 s
    assert time.monotonic() - began < HANG_S
    assert len(traces_server.requests) == 1
    assert fallom.stats()["dropped"]["shutdown"] == 1
    assert "1 spans undelivered" in capfd.readouterr().err


@pytest.mark.parametrize("failure", [("status", 503), ("reset",)])
def test_at_exit_a_failing_server_gets_the_whole_shutdown_budget(
        traces_server: TracesServer, capfd: pytest.CaptureFixture[str],
        failure: Any) -> None:
    traces_server.default = failure
    start(traces_server, batch=True, **NO_END_BUT_THE_BUDGET)
    call(1)
    assert traces_server.wait_for_requests(1)
    began = time.monotonic()
    fallom.shutdown(1.5)
    assert time.monotonic() - began < HANG_S  # retries stop at the budget, not the 600 s
    assert len(traces_server.requests) >= 2  # it kept retrying within the budget
    assert fallom.stats()["dropped"]["shutdown"] == 1
    said = capfd.readouterr().err
    assert "; 1 spans undelivered" in said
    assert 1.0 < gave_up_after(said) <= 1.5  # the 1.5 s budget, not the 600 s retries


def test_retry_after_zero_does_not_switch_off_the_backoff(traces_server: TracesServer) -> None:
    traces_server.then(*[("status", 503, {"Retry-After": "0"})] * 3,
                       *[("status", 429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})] * 2)
    start(traces_server)
    call(1)
    assert fallom.flush(30.0) is True
    times = [r["at"] for r in traces_server.requests]
    assert len(times) == 6
    # the backoff doubles from 0.2 s (jitter 0.5-1.5x): 5 waits take at least 3.1 s
    assert times[-1] - times[0] > 2.5


def test_each_full_batch_is_sent_without_waiting_for_the_interval(
        traces_server: TracesServer) -> None:
    start(traces_server, max_batch_size=10, batch_interval=3600)
    for round_ in (1, 2, 3):  # the worker is woken again after each drain
        for i in range(10):
            call(i)
        assert traces_server.wait_for(10 * round_), f"batch {round_} waited for the interval"


def test_queue_full_drops_the_new_record_and_counts_exactly(traces_server: TracesServer) -> None:
    traces_server.default = ("hang",)
    start(traces_server, max_queue_size=100)
    call(0)
    assert traces_server.wait_for_requests(1)  # the worker is stuck on that one
    for i in range(150):
        call(i)  # never waits, although the server hangs
    assert fallom.stats()["dropped"]["queue_full"] == 50
    assert fallom.flush(0.2) is False
    traces_server.release()


def test_a_batch_over_the_byte_cap_is_split(traces_server: TracesServer) -> None:
    start(traces_server, max_batch_bytes=2_000, batch=True, compress=True)
    for i in range(40):
        call(i)
    assert fallom.flush(5.0) is True
    assert len(traces_server.records) == 40
    assert len(traces_server.requests) > 1
    for request in traces_server.requests:
        assert len(gzip.decompress(request["body"])) <= 2_000


def test_a_record_over_the_cap_is_truncated_not_dropped(traces_server: TracesServer) -> None:
    start(traces_server, max_batch_bytes=3_000)

    @fallom.trace_llm
    def big(text: str) -> str:
        return text

    big("y" * 5_000)
    assert fallom.flush(5.0) is True
    (record,) = traces_server.records
    assert "truncated" in json.dumps(record)
    assert len(json.dumps(record)) <= 3_100


def test_413_splits_until_a_single_record_is_refused(traces_server: TracesServer) -> None:
    traces_server.then(("status", 413), ("status", 413), ("status", 413))
    start(traces_server, batch=True)
    for i in range(4):
        call(i)
    assert fallom.flush(5.0) is False  # 4 -> 2 + 2 -> 1 + 1: the first single is refused
    assert sorted(view(r).input["i"] for r in traces_server.records) == [1, 2, 3]
    assert fallom.stats()["dropped"]["payload_too_large"] == 1


def test_plain_http_to_another_host_is_refused() -> None:
    with pytest.raises(ValueError, match="traces_url"):
        fallom.init(api_key=KEY, traces_url="http://traces.example.com")
    with pytest.raises(ValueError, match="configs_url"):
        fallom.init(api_key=KEY, configs_url="http://10.1.2.3:8080")
    fallom.init(api_key=KEY, traces_url="http://traces.example.com", allow_insecure_http=True)
    fallom.init(api_key=KEY, traces_url="http://[::1]:9/", configs_url="http://localhost:1",
                prompts_url="http://127.0.0.5")


def test_local_mode_sends_nothing_even_with_urls(traces_server: TracesServer) -> None:
    fallom.init(traces_url=traces_server.url)
    call(1)
    assert fallom.flush(2.0) is True
    fallom.shutdown(2.0)
    assert traces_server.requests == []


def test_own_exporter_on_the_same_pipeline(traces_server: TracesServer) -> None:
    seen: List[dict] = []

    class Mine:
        def export(self, records: List[dict]) -> bool:
            seen.extend(records)
            return True

    start(traces_server, exporters=[Mine()])
    call(5)
    assert fallom.flush(5.0) is True
    assert [view(r).input for r in seen] == [{"i": 5}]
    assert len(traces_server.records) == 1


def test_a_failure_that_is_not_worth_retrying_is_reported_as_such(
        traces_server: TracesServer, caplog: Any) -> None:
    traces_server.then(("bad-chunked",))
    start(traces_server, batch=True)
    call(1)
    assert fallom.flush(5.0) is False
    stats = fallom.stats()
    assert stats["dropped"]["export_error"] == 1
    assert stats["retried"] == 0
    assert len(traces_server.requests) == 1
    assert "ChunkedEncodingError (not retried)" in caplog.text
    assert "answered 400" not in caplog.text
