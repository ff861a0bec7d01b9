"""``fallom serve`` answers a client's mistake with a 4xx naming it, stores the good records
beside a bad one, and no client can hold its connections or its file descriptors
(issue 24, points 12, 14 and 17)."""

from __future__ import annotations

import base64
import gzip
import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import requests

from fallom.server import FallomServer
from fallom.server._app import ServeLimits, serve

from ._serve_process import stop
from .test_serve_hostile import KEY, otlp_span, post, raw_request, record, stored_names

AUTH = {"Authorization": f"Bearer {KEY}"}
DEEP = "[" * 50_000 + "]" * 50_000


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FallomServer]:
    running = serve(port=0, db=str(tmp_path / "t.db"), api_keys=[KEY],
                    limits=ServeLimits(idle_timeout=0.5))
    yield running
    running.close()


def get(server: FallomServer, path: str) -> requests.Response:
    return requests.get(server.url + path, headers=AUTH, timeout=10)


def status_of(answer: bytes) -> bytes:
    return answer.split(b" ", 2)[1]


# -- point 12: the client's fault gets a 4xx naming it --------------------------------------
def test_raw_json_nested_too_deeply_is_refused_alone_and_the_trace_reads_back(
        server: FallomServer) -> None:
    batch = [record(0), record(1, attributes={"fallom.raw.usage": DEEP}),
             record(2, attributes={"fallom.raw.request": DEEP}), record(3)]
    reply = post(server, json.dumps({"traces": batch}).encode())
    assert reply.status_code == 200, reply.text
    reasons = {e["index"]: e["reason"] for e in reply.json()["errors"]}
    assert reasons.keys() == {1, 2}
    assert "fallom.raw.usage" in reasons[1]
    assert "nested" in reasons[1]
    assert "fallom.raw.request" in reasons[2]
    assert stored_names(server) == ["span-0", "span-3"]  # and the trace reads back: no 500


def test_such_a_record_stored_by_an_earlier_version_still_reads_back(
        server: FallomServer, tmp_path: Path) -> None:
    old = record(0, attributes={"fallom.raw.request": DEEP})
    with sqlite3.connect(tmp_path / "t.db") as db:  # as a server without the check stored it
        db.execute("INSERT INTO spans (span_id, trace_id, name, record) VALUES (?, ?, ?, ?)",
                   (old["span_id"], old["trace_id"], old["name"], json.dumps(old)))
    reply = get(server, f"/api/traces/{7:032x}")
    assert reply.status_code == 200, reply.text
    (shown,) = reply.json()["spans"]
    assert "nested too deeply" in shown["input"]


def test_an_otlp_time_to_first_token_of_1e308_is_not_a_server_failure(
        server: FallomServer) -> None:
    bad = otlp_span(1)
    bad["attributes"] = [{"key": "gen_ai.server.time_to_first_token",
                          "value": {"doubleValue": 1e308}}]
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [otlp_span(0), bad]}]}]}
    reply = post(server, json.dumps(body).encode())
    assert reply.status_code == 200, reply.text  # refused alone, or stored without the value
    spans = get(server, f"/api/traces/{0xabc:032x}").json()["spans"]
    assert "chat-0" in {s["name"] for s in spans}
    assert reply.json()["rejected"] == 2 - len(spans)


def test_the_same_in_otlp_protobuf(server: FallomServer) -> None:
    json_format = pytest.importorskip("google.protobuf.json_format")
    service = pytest.importorskip(
        "opentelemetry.proto.collector.trace.v1.trace_service_pb2")
    span = {**otlp_span(0), "traceId": base64.b64encode(bytes.fromhex(f"{0xabc:032x}")).decode(),
            "spanId": base64.b64encode(bytes.fromhex(f"{1:016x}")).decode(),
            "attributes": [{"key": "gen_ai.server.time_to_first_token",
                            "value": {"doubleValue": 1e308}}]}
    message = json_format.ParseDict({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]},
                                    service.ExportTraceServiceRequest())
    reply = post(server, message.SerializeToString(),
                 {"Content-Type": "application/x-protobuf"})
    assert reply.status_code in (200, 400), reply.content  # stored, or refused as the client's


@pytest.mark.parametrize(("head", "says"), [
    (b"GET /api/traces?since=0001-01-01T00:00%2B01:00 HTTP/1.1\r\n", b"since"),
    (b"GET /api/traces?limit=%C2%B2 HTTP/1.1\r\n", b"limit"),
    (b"GET /api/traces?min_tokens=%C2%B2 HTTP/1.1\r\n", b"min_tokens"),
    (b"POST /v1/traces HTTP/1.1\r\nContent-Length: \xb2\r\n", b"Content-Length"),
])
def test_values_int_and_datetime_refuse_are_a_400_naming_them(
        server: FallomServer, head: bytes, says: bytes) -> None:
    answer = raw_request(server, head + b"Authorization: Bearer " + KEY.encode() + b"\r\n\r\n")
    assert status_of(answer) == b"400", answer
    assert says in answer.partition(b"\r\n\r\n")[2]


def test_a_client_that_stops_mid_body_gets_a_408_and_no_failure_is_logged(
        server: FallomServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="fallom.serve")
    answer = raw_request(server, b"POST /v1/traces HTTP/1.1\r\nAuthorization: Bearer "
                         + KEY.encode() + b"\r\nContent-Length: 100\r\n\r\n{\"traces\": [")
    assert status_of(answer) == b"408", answer
    assert b"stopped arriving" in answer
    assert [r.getMessage() for r in caplog.records if r.name == "fallom.serve"] == []


# -- point 14 ---------------------------------------------------------------------------------
def test_a_gzip_body_of_several_members_is_read_whole(server: FallomServer) -> None:
    body = json.dumps({"traces": [record(0), record(1)]}).encode()
    members = gzip.compress(body[:20]) + gzip.compress(body[20:])
    assert gzip.decompress(members) == body  # valid gzip, as the gzip module reads it
    reply = post(server, members, {"Content-Encoding": "gzip"})
    assert reply.status_code == 200, reply.text
    assert stored_names(server) == ["span-0", "span-1"]
    truncated = post(server, gzip.compress(body)[:-12], {"Content-Encoding": "gzip"})
    assert truncated.status_code == 400


def test_clients_trickling_bytes_cannot_hold_every_connection(tmp_path: Path) -> None:
    running = serve(port=0, db=str(tmp_path / "t.db"), api_keys=[KEY],
                    limits=ServeLimits(max_connections=4, request_timeout=0.5))
    host, port = running.httpd.server_address[:2]
    done = threading.Event()
    slow = [socket.create_connection((host, port), timeout=5) for _ in range(4)]

    def trickle(sock: socket.socket) -> None:
        try:
            sock.sendall(b"POST /v1/traces HTTP/1.1\r\nX-Slow: ")
            while not done.wait(0.05):
                sock.sendall(b"a")  # a byte well within the idle timeout, for ever
        except OSError:
            pass  # the server hung up on it

    threads = [threading.Thread(target=trickle, args=(sock,)) for sock in slow]
    for thread in threads:
        thread.start()
    try:
        statuses: List[int] = []
        started = time.monotonic()
        # the trickles go on until this loop ends: a 200 means request_timeout freed a slot
        while time.monotonic() - started < 60 and 200 not in statuses:
            try:
                statuses.append(get(running, "/configs").status_code)
            except requests.ConnectionError:  # refused so fast the request was not read
                statuses.append(503)
            done.wait(0.05)
    finally:
        done.set()
        for thread in threads:
            thread.join()
        for sock in slow:
            sock.close()
        running.close()
    assert statuses[0] == 503  # every slot was held when it came
    assert statuses[-1] == 200


def test_a_model_name_with_a_comma_is_one_model(server: FallomServer) -> None:
    post(server, json.dumps({"traces": [record(0, model="org/model,v2"),
                                        record(1, model="plain")]}).encode())
    (listed,) = get(server, "/api/traces").json()["traces"]
    assert listed["models"] == ["org/model,v2", "plain"]


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_file_descriptors_stay_bounded_over_many_connections(server: FallomServer) -> None:
    host, port = server.httpd.server_address[:2]

    def one_connection() -> None:
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(b"GET /api/traces HTTP/1.1\r\nConnection: close\r\n"
                         b"Authorization: Bearer " + KEY.encode() + b"\r\n\r\n")
            while sock.recv(65536):
                pass

    for _ in range(20):
        one_connection()
    before = open_descriptors()
    counts = []
    for _ in range(6):
        for _ in range(100):
            one_connection()
        counts.append(open_descriptors())
    assert max(counts) <= before + 4, (before, counts)  # each thread's SQLite files


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and SIGXFSZ as on Linux")
def test_a_full_disk_is_reported_as_itself_and_the_sender_may_retry(tmp_path: Path) -> None:
    import resource

    def small_files() -> None:  # what a full disk does to SQLite's writes
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))

    proc = subprocess.Popen(
        [sys.executable, "-m", "fallom", "serve", "--port", "0", "--db", str(tmp_path / "t.db"),
         "--api-key", KEY], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=small_files)
    try:
        assert proc.stdout is not None
        url = next(line for line in iter(proc.stdout.readline, "")
                   if "FALLOM_TRACES_URL" in line).strip().split("=", 1)[1]
        batch = [{**record(i), "name": "x" * 2000} for i in range(200)]
        reply = requests.post(url + "/v1/traces", json={"traces": batch}, headers=AUTH,
                              timeout=10)
    finally:
        stop(proc)
    assert proc.stderr is not None
    logged = proc.stderr.read()
    assert reply.status_code == 503  # retried, or spooled, by the SDKs
    assert "Retry-After" in reply.headers
    assert "cannot rollback" not in logged
    assert "disk I/O error" in logged or "disk is full" in logged


@pytest.fixture
def keyless(tmp_path: Path) -> Iterator[FallomServer]:
    running = serve(port=0, db=str(tmp_path / "k.db"))
    yield running
    running.close()


@pytest.mark.parametrize(("host", "status"), [
    (b"evil.example:8787", b"403"), (b"evil.example", b"403"), (b"127.0.0.1.evil.example", b"403"),
    (b"localhost.:1", b"403"), (b"user@127.0.0.1", b"403"), (b"localhost:8787", b"200"),
    (b"LOCALHOST", b"200"), (b"127.0.0.1:1", b"200"), (b"127.9.9.9", b"200"),
    (b"[::1]:8787", b"200")])
def test_without_a_key_only_requests_to_a_loopback_name_are_answered(
        keyless: FallomServer, host: bytes, status: bytes) -> None:
    for path in (b"/api/traces", b"/"):  # the data, and the page that would read it
        answer = raw_request(keyless, b"GET " + path + b" HTTP/1.1\r\nHost: " + host
                             + b"\r\nAuthorization: Bearer any\r\n\r\n")
        assert status_of(answer) == status, (path, answer[:300])
    if status == b"403":
        assert b"loopback" in answer.partition(b"\r\n\r\n")[2]


def test_with_a_key_any_host_name_is_answered(server: FallomServer) -> None:
    answer = raw_request(server, b"GET /api/traces HTTP/1.1\r\nHost: traces.example.com\r\n"
                         b"Authorization: Bearer " + KEY.encode() + b"\r\n\r\n")
    assert status_of(answer) == b"200"


# -- point 17 ---------------------------------------------------------------------------------
def otel_trace() -> Dict[str, Any]:
    """An OpenTelemetry agent: session and user on the root only, tokens on the calls."""
    root = {**otlp_span(0, **{"session.id": "conv-7", "user.id": "u-7"}), "name": "agent"}
    calls = [{**otlp_span(i, **{"gen_ai.request.model": "gpt-4o",
                                "gen_ai.usage.input_tokens": tokens[0],
                                "gen_ai.usage.output_tokens": tokens[1]}),
              "parentSpanId": f"{1:016x}"}
             for i, tokens in ((1, (100, 50)), (2, (40, 20)), (3, (10, 5)))]
    return {"root": root, "calls": calls}


def otlp(spans: List[Dict[str, Any]]) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).encode()


def test_spans_of_an_otel_trace_take_the_session_and_user_of_its_root(
        server: FallomServer) -> None:
    trace = otel_trace()
    calls = trace["calls"]
    assert post(server, otlp(calls[:2])).status_code == 200  # the root ends last
    assert post(server, otlp([trace["root"]])).status_code == 200
    assert post(server, otlp(calls[2:])).status_code == 200  # and one straggler after it
    (session,) = get(server, "/api/sessions").json()["sessions"]
    assert (session["session_id"], session["customer_id"], session["traces"],
            session["spans"], session["total_tokens"]) == ("conv-7", "u-7", 1, 4, 225)
    (listed,) = get(server, "/api/traces?session_id=conv-7").json()["traces"]
    assert (listed["total_tokens"], listed["spans"]) == (225, 4)
    assert get(server, "/api/traces?customer_id=u-7").json()["traces"] == [listed]
    spans = get(server, f"/api/traces/{0xabc:032x}").json()["spans"]
    assert {(s["session_id"], s.get("customer_id")) for s in spans} == {("conv-7", "u-7")}


def test_a_span_with_a_session_of_its_own_keeps_it(server: FallomServer) -> None:
    trace = otel_trace()
    own = {**otlp_span(9, **{"session.id": "other"}), "parentSpanId": f"{1:016x}"}
    post(server, otlp([own, trace["root"]]))
    spans = {s["name"]: s for s in get(server, f"/api/traces/{0xabc:032x}").json()["spans"]}
    assert (spans["chat-9"]["session_id"], spans["chat-9"]["customer_id"]) == ("other", "u-7")


def test_unknown_tokens_are_null_never_0(server: FallomServer) -> None:
    post(server, json.dumps({"traces": [
        record(0, session_id="s-none"), record(1, trace_id=f"{8:032x}", session_id="s-zero",
                                               total_tokens=0)]}).encode())
    listing = {t["session_id"]: t["total_tokens"] for t in get(server, "/api/traces").json()[
        "traces"]}
    assert listing == {"s-none": None, "s-zero": 0}
    sessions = {s["session_id"]: s["total_tokens"] for s in get(server, "/api/sessions").json()[
        "sessions"]}
    assert sessions == {"s-none": None, "s-zero": 0}
