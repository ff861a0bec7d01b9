"""The HTTP exporter against a real local server that fails on command."""

from __future__ import annotations

import gzip
import json
import threading
import time
from typing import Any, List

import pytest

import fallom
from fallom.exporters._http import retry_after_seconds

from ._traces_server import TracesServer

KEY = "test-key-0123"


@fallom.trace_llm
def call(i: int) -> int:
    return i


def start(server: TracesServer, **kwargs: Any) -> None:
    fallom.init(api_key=KEY, traces_url=server.url, **kwargs)


def test_a_batch_is_gzip_json_with_the_key_in_the_header(traces_server: TracesServer) -> None:
    start(traces_server)
    call(1)
    call(2)
    assert fallom.flush(5.0) is True
    request = traces_server.requests[0]
    assert request["path"] == "/v1/traces"
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert request["headers"]["Content-Encoding"] == "gzip"
    assert request["headers"]["Content-Type"] == "application/json"
    body = json.loads(gzip.decompress(request["body"]))
    assert [r["input"] for r in body["traces"]] == [{"i": 1}, {"i": 2}]
    assert fallom.stats()["sent"] == 2


def test_8_threads_x_1000_spans_through_failures_arrive_exactly_once(
    traces_server: TracesServer,
) -> None:
    traces_server.then(("status", 503), ("status", 429, {"Retry-After": "1"}), ("reset",),
                       ("status", 502), ("status", 504))
    start(traces_server, max_batch_size=256)

    def work(t: int) -> None:
        for i in range(1000):
            call(t * 1000 + i)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fallom.flush(30.0) is True
    inputs = [r["input"]["i"] for r in traces_server.records]
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
    start(traces_server)
    call(1)
    began = time.monotonic()
    assert fallom.flush(1.0) is False
    assert time.monotonic() - began < 1.5
    traces_server.release()


def test_shutdown_during_a_backoff_returns_promptly(traces_server: TracesServer) -> None:
    traces_server.then(("status", 503, {"Retry-After": "20"}), ("status", 503))
    start(traces_server)
    call(1)
    assert traces_server.wait_for_requests(1)
    began = time.monotonic()
    fallom.shutdown(10.0)
    assert time.monotonic() - began < 2.0
    assert len(traces_server.requests) == 2  # one last try, no more waiting
    assert fallom.stats()["dropped"]["shutdown"] == 1


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
    start(traces_server, max_batch_bytes=2_000)
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
    start(traces_server)
    for i in range(4):
        call(i)
    assert fallom.flush(5.0) is False  # 4 -> 2 + 2 -> 1 + 1: the first single is refused
    assert sorted(r["input"]["i"] for r in traces_server.records) == [1, 2, 3]
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
    assert [r["input"] for r in seen] == [{"i": 5}]
    assert len(traces_server.records) == 1
