"""Delivery that says what failed and counts what the server refused; one bad span costs
itself alone; URLs judged as the HTTP client reads them."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from typing import Any, Dict, Iterator, Optional

import pytest

import fallom
from fallom import prompts
from fallom.infra._config import is_loopback_url

from ._serve_process import launch, stop
from ._traces_server import TracesServer
from .test_spool_outage import refused_url


@pytest.fixture
def serve_url(tmp_path: Any) -> Iterator[str]:
    proc, url = launch("--db", str(tmp_path / "t.db"))
    try:
        yield url
    finally:
        stop(proc)


def _stored(url: str) -> Dict[str, Any]:
    import requests

    key = {"Authorization": "Bearer k"}  # without --api-key, any key reads
    listing = requests.get(f"{url}/api/traces", params={"limit": "100"}, headers=key,
                           timeout=10).json()
    names: Dict[str, Any] = {}
    for trace in listing["traces"]:
        detail = requests.get(f"{url}/api/traces/{trace['trace_id']}", headers=key,
                              timeout=10).json()
        names.update({span["name"]: span for span in detail["spans"]})
    return names


def test_a_lone_surrogate_is_repaired_before_sending(serve_url: str) -> None:
    fallom.init(api_key="k", traces_url=serve_url)
    for i in range(5):
        with fallom.span(f"good-{i}"):
            pass
    with fallom.span(os.fsdecode(b"bad-\xff")):  # a file name that is not UTF-8
        pass
    assert fallom.flush(10.0) is True
    stats = fallom.stats()
    assert stats["sent"] == 6
    assert sum(stats["dropped"].values()) == 0
    assert "bad-\ufffd" in _stored(serve_url)


def test_a_record_the_server_refuses_in_a_2xx_is_counted_as_dropped(
        serve_url: str, caplog: pytest.LogCaptureFixture) -> None:
    def spoil(record: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        if record["name"] == "spoiled":
            record["span_id"] = "not hex"  # what fallom serve refuses, record by record
        return record

    fallom.init(api_key="k", traces_url=serve_url, redact=spoil, batch=True)
    for name in ("a", "b", "c", "d", "e", "spoiled"):
        with fallom.span(name):
            pass
    assert fallom.flush(10.0) is False  # not everything was stored
    stats = fallom.stats()
    assert stats["sent"] == 5
    assert stats["dropped"]["rejected"] == 1
    assert sorted(_stored(serve_url)) == ["a", "b", "c", "d", "e"]
    assert any("refused 1 of 6 spans" in r.getMessage() and "span_id" in r.getMessage()
               for r in caplog.records)


def test_otlp_out_one_bad_name_costs_nothing_of_its_batch() -> None:
    from ._otlp_receiver import OtlpReceiver

    receiver = OtlpReceiver()
    try:
        fallom.init(otlp_endpoint=f"{receiver.url}/v1/traces")
        for i in range(9):
            with fallom.span(f"ok-{i}"):
                pass
        with fallom.span(os.fsdecode(b"bad-\xff")):
            pass
        assert fallom.flush(10.0) is True
        assert receiver.wait_for(10)
        assert "bad-\ufffd" in {span["name"] for span in receiver.spans}
    finally:
        receiver.close()


def test_foreign_spans_given_up_at_shutdown_are_counted(traces_server: TracesServer) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    traces_server.default = ("hang",)
    fallom.init(api_key="k", traces_url=traces_server.url, batch=True)
    with fallom.span("ours"):
        pass
    assert traces_server.wait_for_requests(1)  # the worker is stuck in that request
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(fallom.FallomExporter()))
    tracer = provider.get_tracer("t")
    for i in range(10):
        with tracer.start_as_current_span(f"foreign-{i}"):
            pass
    fallom.shutdown(0.2)
    assert fallom.stats()["dropped"]["shutdown"] == 11  # one in flight, ten waiting


@pytest.mark.parametrize("url", ["http://evil.invalid\\@127.0.0.1:9",
                                 "http://user:pw@127.0.0.1:9", "http://127.0.0.1:9\\@evil"])
def test_a_url_with_user_info_or_a_backslash_is_refused(url: str) -> None:
    assert not is_loopback_url(url)
    with pytest.raises(ValueError, match="traces_url"):
        fallom.init(api_key="k", traces_url=url)


def test_otlp_headers_never_go_in_clear_to_another_host() -> None:
    with pytest.raises(ValueError, match=r"otlp_endpoint.*plain http"):
        fallom.init(otlp_endpoint="http://collector.example:4318/v1/traces",
                    otlp_headers={"x-api-key": "secret"})
    fallom.init(otlp_endpoint="http://127.0.0.1:4318/v1/traces",
                otlp_headers={"x-api-key": "secret"})  # loopback is fine


def _first_warning(caplog: pytest.LogCaptureFixture, url: str, **init: Any) -> str:
    caplog.set_level(logging.WARNING, "fallom")
    # a retry budget a first retry always fits in (its backoff is at most 0.3 s), however
    # long a loaded machine takes over the first attempt: the warning says "retrying"
    fallom.init(api_key="k", traces_url=url, batch=True, export_retry_timeout=2.0, **init)
    with fallom.span("x"):
        pass
    fallom.flush(10.0)
    said = [r.getMessage() for r in caplog.records if "deliver" in r.getMessage()
            or "answered" in r.getMessage()]
    assert len(said) == 1, said  # one warning, while the program runs
    return said[0]


def test_a_server_that_is_down_is_named_with_its_cause(caplog: pytest.LogCaptureFixture) -> None:
    url = refused_url()
    said = _first_warning(caplog, url)
    assert url in said
    assert "connection refused" in said
    assert "retrying" in said
    assert "dropped" in said


def test_https_to_an_http_server_says_tls(traces_server: TracesServer,
                                          caplog: pytest.LogCaptureFixture) -> None:
    said = _first_warning(caplog, traces_server.url.replace("http://", "https://"))
    assert "TLS" in said


def test_a_refused_key_and_a_wrong_path_are_said(traces_server: TracesServer,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    traces_server.then(("status", 401))
    assert "refused the API key" in _first_warning(caplog, traces_server.url)
    caplog.clear()
    traces_server.then(("status", 404))
    assert "no traces endpoint" in _first_warning(caplog, traces_server.url)


def test_a_misspelt_variable_names_the_right_one(monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("FALLOM_TRACE_URL", "http://127.0.0.1:1")
    fallom.init(api_key="k")
    assert any("FALLOM_TRACE_URL" in r.getMessage() and "FALLOM_TRACES_URL" in r.getMessage()
               for r in caplog.records)


def test_a_traces_url_without_a_key_warns(caplog: pytest.LogCaptureFixture) -> None:
    fallom.init(traces_url="http://127.0.0.1:1")
    assert any("no API key" in r.getMessage() for r in caplog.records)


def test_prompts_before_init_say_init_was_not_called() -> None:
    with pytest.raises(ValueError, match=r"init\(\) was not called"):
        prompts.get("greeting")


def test_exit_says_where_undelivered_spans_went() -> None:
    code = textwrap.dedent(f"""
        import fallom
        fallom.init(api_key="k", traces_url="{refused_url()}", shutdown_timeout=2,
                    export_retry_timeout=30)  # the exit drain has room for a first attempt
        with fallom.span("x"):
            pass
    """)
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=60)
    last = child.stderr.strip().splitlines()[-1]
    assert "1 spans undelivered" in last
    assert "connection refused" in last
