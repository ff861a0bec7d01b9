"""``fallom serve`` against careless and hostile clients: every request gets an answer,
the good records beside a bad one are stored, and no client can make it hold memory
or threads it should not."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import requests

from fallom.server import FallomServer
from fallom.server._app import ServeLimits, serve

KEY = "hostile-key"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FallomServer]:
    (tmp_path / "data").mkdir()
    running = serve(port=0, db=str(tmp_path / "data" / "t.db"), api_keys=[KEY],
                    limits=ServeLimits(max_connections=8, idle_timeout=1.0))
    yield running
    running.close()


def record(i: int, **extra: Any) -> Dict[str, Any]:
    return {"trace_id": f"{7:032x}", "span_id": f"{i + 1:016x}", "name": f"span-{i}",
            "kind": "span", "start_time": f"2026-01-01T00:00:{i:02d}.000000Z", "status": "OK",
            "duration_ms": 1, "config_key": "default", "session_id": "s", **extra}


def post(server: FallomServer, data: bytes, headers: Dict[str, str] | None = None,
         path: str = "/v1/traces") -> requests.Response:
    return requests.post(server.url + path, data=data, timeout=10, headers={
        "Authorization": f"Bearer {KEY}", "Content-Type": "application/json",
        **(headers or {})})


def raw_request(server: FallomServer, head: bytes, timeout: float = 5.0) -> bytes:
    """Send bytes as they are; the server's whole answer (it must give one)."""
    host, port = server.httpd.server_address[:2]
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(head)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                head_part, _, body = b"".join(chunks).partition(b"\r\n\r\n")
                length = [int(line.split(b":")[1]) for line in head_part.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")]
                if length and len(body) >= length[0]:
                    break
    return b"".join(chunks)


def stored_names(server: FallomServer) -> List[str]:
    spans = requests.get(f"{server.url}/api/traces/{7:032x}", timeout=10,
                         headers={"Authorization": f"Bearer {KEY}"}).json().get("spans", [])
    return sorted(s["name"] for s in spans)


def test_bad_records_are_refused_with_reasons_and_the_good_ones_stored(
        server: FallomServer) -> None:
    bad = [record(1, session_id=["a"]), record(2, customer_id={"x": 1}),
           record(3, config_key=["k"]), record(4, total_tokens=10**20),
           record(6, duration_ms=float("nan")), record(7, name="\ud800"),
           record(8, duration_ms=10**400)]
    # tokens a reader cannot count are left out, not a reason to lose the span
    odd = record(5, attributes={"fallom.raw.usage": json.dumps({"total_tokens": 10**20})})
    body = json.dumps({"traces": [record(0), *bad, odd, record(9)]}).encode()
    reply = post(server, body)
    assert reply.status_code == 200
    answer = reply.json()
    assert (answer["accepted"], answer["rejected"]) == (3, len(bad))
    reasons = {e["index"]: e["reason"] for e in answer["errors"]}
    assert "session_id must be a string" in reasons[1]
    assert "customer_id" in reasons[2]
    assert "config_key" in reasons[3]
    assert "total_tokens" in reasons[4]
    assert "finite" in reasons[5]
    assert "Unicode" in reasons[6]
    assert "finite" in reasons[7]
    assert stored_names(server) == ["span-0", "span-5", "span-9"]
    served = requests.get(f"{server.url}/api/traces?limit=5", timeout=10,
                          headers={"Authorization": f"Bearer {KEY}"})
    json.loads(served.text, parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))


@pytest.mark.parametrize(("head", "status"), [
    (b"POST /v1/traces HTTP/1.1\r\nAuthorization: Bearer hostile-key\r\n"
     b"Content-Length: abc\r\n\r\n", b"400"),
    (b"POST /v1/traces HTTP/1.1\r\nAuthorization: Bearer hostile-key\r\n"
     b"Content-Length: -1\r\n\r\n", b"400"),
    (b"POST /v1/traces HTTP/1.1\r\nContent-Length: -1\r\n\r\n", b"401"),
    (b"POST /v1/traces HTTP/1.1\r\nAuthorization: Bearer hostile-key\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", b"400"),  # not JSON
    (b"POST /v1/traces HTTP/1.1\r\nAuthorization: Bearer hostile-key\r\n"
     b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", b"400"),
    (b"POST /v1/traces HTTP/1.1\r\nAuthorization: Bearer hostile-key\r\n"
     b"Transfer-Encoding: chunked\r\n\r\nFFFFFFFF\r\n", b"413"),
    (b"POST /v1/traces HTTP/1.1\r\nAuthorization: Bearer hostile-key\r\n"
     b"Transfer-Encoding: gzip\r\n\r\n", b"501"),
    (b"GET /configs/x/version/99999999999999999999 HTTP/1.1\r\n"
     b"Authorization: Bearer hostile-key\r\n\r\n", b"404"),
    ("GET /configs HTTP/1.1\r\nAuthorization: Bearer clé\r\n\r\n".encode(), b"401"),
    (b"GET /configs HTTP/1.1\r\nAuthorization: bearer hostile-key\r\n\r\n", b"200"),
    (b"GET /api/traces/zzz/" + b"0" * 31 + b"7 HTTP/1.1\r\nAuthorization: Bearer hostile-key"
     b"\r\n\r\n", b"404"),
    (b"GET /api/traces?limit=-1 HTTP/1.1\r\nAuthorization: Bearer hostile-key\r\n\r\n", b"400"),
    (b"GET /api/traces?since=zzz HTTP/1.1\r\nAuthorization: Bearer hostile-key\r\n\r\n", b"400"),
    (b"GET /api/traces?since=2026-13-45 HTTP/1.1\r\nAuthorization: Bearer hostile-key\r\n\r\n",
     b"400"),
])
def test_every_malformed_request_gets_an_answer(server: FallomServer, head: bytes,
                                                status: bytes) -> None:
    answer = raw_request(server, head)
    assert answer.split(b" ", 2)[1] == status, answer[:200]


def test_a_chunked_body_is_read(server: FallomServer) -> None:
    def chunks() -> Iterator[bytes]:  # requests sends a generator chunked
        body = json.dumps({"traces": [record(0), record(1)]}).encode()
        yield body[:10]
        yield body[10:]

    reply = post(server, chunks())  # type: ignore[arg-type]
    assert reply.json()["stored"] == 2
    assert stored_names(server) == ["span-0", "span-1"]


def test_bodies_that_break_the_parser_get_a_4xx(server: FallomServer) -> None:
    deep = b"[" * 10_000 + b"]" * 10_000
    assert post(server, deep).status_code == 400
    assert post(server, b'{"traces": [1, 2').status_code == 400
    shouting = post(server, gzip.compress(json.dumps(record(0)).encode()),
                    {"Content-Encoding": "GZIP"})
    assert shouting.status_code == 200
    assert post(server, b"{}", {"Content-Encoding": "br"}).status_code == 415
    assert requests.get(f"{server.url}/api/traces?limit=0", timeout=10, headers={
        "Authorization": f"Bearer {KEY}"}).json() == {"traces": []}


def test_a_gzip_bomb_is_refused_before_it_is_parsed_and_the_reply_stays_small(
        server: FallomServer) -> None:
    bomb = gzip.compress(b'{"traces": [' + b"{}," * 1_000_000 + b"{}]}", 9)
    assert len(bomb) < 10_000
    reply = post(server, bomb, {"Content-Encoding": "gzip"})
    assert reply.status_code == 413
    assert len(reply.content) < 1_000
    many = json.dumps({"traces": [{"name": "x"}] * 9_000}).encode()
    reply = post(server, many)
    assert reply.status_code == 400
    assert len(reply.content) < 5_000  # 25 reasons listed, then a count
    assert reply.json()["more_errors"] == 9_000 - 25


def test_more_connections_than_allowed_get_a_503_and_idle_ones_are_closed(
        server: FallomServer) -> None:
    host, port = server.httpd.server_address[:2]
    idle = [socket.create_connection((host, port), timeout=5) for _ in range(8)]
    try:
        extra = raw_request(server, b"GET /configs HTTP/1.1\r\n\r\n")
        assert extra.split(b" ", 2)[1] == b"503"
        assert idle[0].recv(1) == b""  # closed by the server after its idle timeout
    finally:
        for sock in idle:
            sock.close()


def test_a_deleted_data_directory_answers_5xx(server: FallomServer, tmp_path: Path) -> None:
    shutil.rmtree(tmp_path / "data")
    reply = post(server, json.dumps(record(0)).encode())
    assert reply.status_code >= 500
    assert "failed" in reply.json()["error"]


def otlp_span(i: int, **attributes: Any) -> Dict[str, Any]:
    def value(v: Any) -> Dict[str, Any]:
        if isinstance(v, bool):
            return {"boolValue": v}
        if isinstance(v, int):
            return {"intValue": str(v)}
        return {"stringValue": str(v)}
    return {"traceId": f"{0xabc:032x}", "spanId": f"{i + 1:016x}", "name": f"chat-{i}",
            "startTimeUnixNano": "1767225600000000000", "endTimeUnixNano": "1767225600250000000",
            "status": {"code": 0},
            "attributes": [{"key": k, "value": value(v)} for k, v in attributes.items()]}


def test_otlp_json_is_stored_with_the_genai_mapping(server: FallomServer) -> None:
    good = otlp_span(0, **{"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 7,
                           "gen_ai.usage.output_tokens": 5, "session.id": "conv-1",
                           "user.id": "u-9"})
    broken = {**otlp_span(1), "traceId": "not hex"}
    body = {"resourceSpans": [{"resource": {"attributes": []},
                               "scopeSpans": [{"scope": {"name": "js"}, "spans": [good, broken]}]}]}
    reply = post(server, json.dumps(body).encode())
    assert reply.status_code == 200
    assert reply.json()["partialSuccess"]["rejectedSpans"] == "1"
    listing = requests.get(f"{server.url}/api/traces?session_id=conv-1", timeout=10,
                           headers={"Authorization": f"Bearer {KEY}"}).json()["traces"]
    assert len(listing) == 1
    assert (listing[0]["customer_id"], listing[0]["total_tokens"]) == ("u-9", 12)
    spans = requests.get(f"{server.url}/api/traces/{0xabc:032x}", timeout=10,
                         headers={"Authorization": f"Bearer {KEY}"}).json()["spans"]
    assert (spans[0]["model"], spans[0]["kind"], spans[0]["duration_ms"]) == ("gpt-4o", "llm", 250)


def test_otlp_attribute_nesting_is_bounded_in_maps_as_in_lists(server: FallomServer) -> None:
    value: Dict[str, Any] = {"stringValue": "bottom"}
    for _ in range(150):
        value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    span = {**otlp_span(0), "attributes": [{"key": "deep", "value": value}]}
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    assert post(server, json.dumps(body).encode()).status_code == 200
    stored = requests.get(f"{server.url}/api/traces/{0xabc:032x}", timeout=10, headers={
        "Authorization": f"Bearer {KEY}"}).json()["spans"][0]["attributes"]["deep"]
    depth = 0
    while isinstance(stored, dict):
        stored, depth = stored["k"], depth + 1
    assert (depth, stored) == (17, None)  # cut where arrays are cut


def test_otlp_protobuf_from_the_real_otel_sdk_is_stored(server: FallomServer) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
        endpoint=server.url + "/v1/traces", headers={"Authorization": f"Bearer {KEY}"})))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("agent") as root:
        with tracer.start_as_current_span("chat gpt-4o-mini") as span:
            span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            span.set_attribute("gen_ai.usage.input_tokens", 3)
            span.set_attribute("gen_ai.usage.output_tokens", 4)
            span.set_attribute("fallom.session_id", "otel-session")
    provider.shutdown()
    trace_id = f"{root.get_span_context().trace_id:032x}"
    spans = requests.get(f"{server.url}/api/traces/{trace_id}", timeout=10,
                         headers={"Authorization": f"Bearer {KEY}"}).json()["spans"]
    by_name = {s["name"]: s for s in spans}
    assert set(by_name) == {"agent", "chat gpt-4o-mini"}
    chat = by_name["chat gpt-4o-mini"]
    assert (chat["model"], chat["total_tokens"], chat["session_id"]) == ("gpt-4o-mini", 7,
                                                                         "otel-session")
    assert chat["parent_span_id"] == by_name["agent"]["span_id"]


def serve_cli(tmp_path: Path, *args: str) -> Tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "fallom", "serve", *args], text=True,
                          capture_output=True, timeout=30, cwd=tmp_path,
                          env={**os.environ, "FALLOM_DATA_DIR": str(tmp_path / "d")})
    return proc.returncode, proc.stdout, proc.stderr


# read-only places, even for root (tests run as root in CI): a file system, a directory
READ_ONLY = [(["--db", "/sys/fallom.db", "--port", "0"], "cannot use /sys/fallom.db"),
             (["--db", "/proc/fallom-x/t.db", "--port", "0"],
              "cannot create the directory /proc/fallom-x")] if sys.platform == "linux" else []


def test_startup_problems_are_one_line_and_exit_2(tmp_path: Path) -> None:
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("hello, this is not a database " * 100)
    (tmp_path / "a-dir.db").mkdir()
    for args, says in ((["--port", "99999"], "port"),
                       (["--db", str(not_sqlite), "--port", "0"], "database"),
                       (["--db", str(tmp_path / "a-dir.db"), "--port", "0"], "fallom serve:"),
                       (["--api-key", "", "--port", "0"], "empty"), *READ_ONLY):
        code, _out, err = serve_cli(tmp_path, *args)
        assert code == 2, (args, err)
        assert says in err
        assert "Traceback" not in err


def test_serve_help_shows_every_default_and_the_auth_rule(tmp_path: Path) -> None:
    shown = subprocess.run([sys.executable, "-m", "fallom", "serve", "--help"], text=True,
                           capture_output=True, timeout=30, check=True).stdout
    flat = " ".join(shown.split())
    for option, default in (("--port", "8787"), ("--host", "127.0.0.1"),
                            ("--max-body", "16777216"), ("--max-records", "10000"),
                            ("--max-connections", "64"), ("--idle-timeout", "30.0")):
        assert option in flat
        assert f"(default: {default})" in flat
    assert "without it any key is" in flat
    assert "loopback only" in flat


def test_a_key_given_on_the_command_line_is_never_printed(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "fallom", "serve", "--port", "0", "--db",
                             str(tmp_path / "t.db"), "--api-key", "sekret-value-123"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(3)]
    proc.terminate()
    out, err = proc.communicate(timeout=10)
    assert "sekret" not in "".join(lines) + out + err
    assert any("FALLOM_TRACES_URL" in line for line in lines)


def test_ipv6_loopback_works(tmp_path: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        running = serve(db=str(tmp_path / "t.db"), host="::1", port=0)
    except OSError as exc:
        pytest.skip(f"IPv6 loopback unavailable here: {exc}")
    try:
        assert running.url.startswith("http://[::1]:")
        reply = requests.get(running.url + "/configs", timeout=10,
                             headers={"Authorization": "Bearer any"})
        assert reply.status_code == 200
    finally:
        running.close()
