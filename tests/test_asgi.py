"""``fallom serve`` on Starlette and uvicorn, what is new (issue #28): a database that goes
away while serving is a 503 with Retry-After, and the server recovers when it returns;
replicas on one PostgreSQL behave as one server, and ``kill -9`` of one loses no span it
acknowledged; ``--workers``; the command line's database forms, retention and migrate;
the time limits on a client without a key."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import requests

import fallom
from fallom.server import FallomServer
from fallom.server._app import RETRY_AFTER, ServeLimits, serve

from . import _postgres
from ._databases import postgres_db  # noqa: F401  (a fixture)
from ._serve_process import launch, stop

KEY = "asgi-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
SECRET = "pw-never-shown-7f3"


def batch(trace: int, spans: int) -> Dict[str, Any]:
    """A batch of ``spans`` records of one trace (span ids unique across traces)."""
    return {"traces": [{"trace_id": f"{trace:032x}", "span_id": f"{trace:08x}{i + 1:08x}",
                        "name": f"span-{i}", "kind": "span", "status": "OK",
                        "start_time": f"2026-01-01T00:00:{i % 60:02d}.000000Z",
                        "duration_ms": 1} for i in range(spans)]}


def post(url: str, body: Any) -> requests.Response:
    return requests.post(f"{url}/v1/traces", json=body, headers=AUTH, timeout=30)


def get(url: str, path: str) -> requests.Response:
    return requests.get(url + path, headers=AUTH, timeout=30)


def spans_of(url: str, trace: int) -> List[str]:
    answer = get(url, f"/api/traces/{trace:032x}")
    return sorted(s["span_id"] for s in answer.json().get("spans", []))


# -- a database that goes away -------------------------------------------------------------
def pg_ctl(data: str, *args: str) -> None:
    bindir = _postgres.find_bin()
    assert bindir is not None
    log = os.path.join(os.path.dirname(data), "log")
    subprocess.run(_postgres._as_owner([os.path.join(bindir, "pg_ctl"), "-D", data, "-l", log,
                                        *args]), check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[Tuple[str, str]]:
    """A PostgreSQL of this module's own, to stop and start again: (URL, data dir)."""
    if _postgres.find_bin() is None:
        pytest.skip("PostgreSQL is not installed here (no initdb): apt-get install postgresql")
    with tempfile.TemporaryDirectory(prefix="fallom-pg-asgi-") as directory:
        url, data = _postgres.start(directory)
        try:
            yield url, data
        finally:
            _postgres.stop(data)


def test_a_database_that_goes_away_is_a_503_with_retry_after_and_the_server_recovers(
        own_postgres: Tuple[str, str]) -> None:
    url, data = own_postgres
    server = serve(port=0, db=url, api_keys=[KEY])
    try:
        assert post(server.url, batch(1, 3)).json()["stored"] == 3
        fallom.init(api_key=KEY, traces_url=server.url)
        pg_ctl(data, "-m", "fast", "stop")
        try:
            for answer in (post(server.url, batch(2, 3)), get(server.url, "/api/traces")):
                assert answer.status_code == 503, answer.text
                assert answer.headers["Retry-After"] == RETRY_AFTER
                assert "127.0.0.1" in answer.json()["error"]  # which database, in words
            with fallom.span("sent-while-the-database-was-away") as span:
                pass
            assert not fallom.flush(1.0)  # the SDK holds it and tries again
        finally:
            pg_ctl(data, "-w", "restart")  # with the options it was started with
        assert post(server.url, batch(2, 3)).json()["stored"] == 3  # the client's retry
        assert fallom.flush(30.0)
        assert fallom.stats()["retried"] >= 1
        assert len(spans_of(server.url, 1)) == 3  # acknowledged before: still there
        assert len(spans_of(server.url, 2)) == 3
        names = [s["name"] for s in get(server.url, f"/api/traces/{span.trace_id}").json()[
            "spans"]]
        assert names == ["sent-while-the-database-was-away"]
    finally:
        server.close()


# -- replicas --------------------------------------------------------------------------------
CATALOG = """
[configs.agent]
variants = [{ model = "gpt-4o", weight = 100 }]
"""


def test_two_replicas_on_one_database_are_one_server(postgres_db: str,  # noqa: F811
                                                     tmp_path: Path) -> None:
    catalog = tmp_path / "fallom.toml"
    catalog.write_text(CATALOG)
    first = serve(port=0, db=postgres_db, api_keys=[KEY], config=str(catalog))
    second = serve(port=0, db=postgres_db, api_keys=[KEY], config=str(catalog))
    try:
        stored: List[int] = []

        def send(server: FallomServer, trace: int) -> None:
            stored.append(post(server.url, batch(trace, 5)).json()["stored"])

        for trace in range(1, 11):  # each batch to both replicas at once
            threads = [threading.Thread(target=send, args=(s, trace)) for s in (first, second)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert sum(stored) == 10 * 5  # every span stored once
        assert len(stored) == 20
        for server in (first, second):  # each reads the other's writes
            listed = get(server.url, "/api/traces?limit=100").json()["traces"]
            assert sorted(t["spans"] for t in listed) == [5] * 10
        versions = {get(s.url, "/configs").json()["configs"][0]["version"]
                    for s in (first, second)}
        assert versions == {1}
        catalog.write_text(CATALOG.replace("gpt-4o", "gpt-4.1"))
        os.utime(catalog, (time.time() + 5, time.time() + 5))
        edited = [get(s.url, "/configs").json()["configs"][0] for s in (first, second)]
        assert [(c["version"], c["variants"][0]["model"]) for c in edited] == [(2, "gpt-4.1")] * 2
        assert get(first.url, "/configs/agent/version/3").status_code == 404  # one new version
    finally:
        first.close()
        second.close()


def test_kill_9_of_a_replica_mid_ingest_loses_no_span_it_acknowledged(
        postgres_db: str) -> None:  # noqa: F811
    doomed, doomed_url = launch("--db", postgres_db, "--api-key", KEY)
    survivor, survivor_url = launch("--db", postgres_db, "--api-key", KEY)
    acknowledged: List[int] = []
    lock, enough = threading.Lock(), threading.Event()

    def client(n: int) -> None:
        with requests.Session() as session:
            for trace in range(n * 10_000 + 1, n * 10_000 + 1_000):
                try:
                    reply = session.post(f"{doomed_url}/v1/traces", json=batch(trace, 20),
                                         headers=AUTH, timeout=30)
                except requests.RequestException:
                    return  # the replica is gone
                if reply.status_code == 200:
                    with lock:
                        acknowledged.append(trace)
                        if len(acknowledged) >= 40:
                            enough.set()

    clients = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    try:
        for thread in clients:
            thread.start()
        assert enough.wait(120)
        doomed.kill()  # SIGKILL, mid-ingest: 8 clients are sending
        doomed.wait(30)
        for thread in clients:
            thread.join(60)
        with lock:
            answered = list(acknowledged)
        missing = [t for t in answered if len(spans_of(survivor_url, t)) != 20]
        assert missing == []
        assert len(answered) >= 40
    finally:
        if doomed.poll() is None:
            doomed.kill()
        stop(survivor)


def worker_pids(parent: int) -> List[int]:
    """The processes uvicorn spawned for ``--workers``, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"spawn_main" in command:
            found.append(int(entry))
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_workers_share_the_port_on_postgresql(postgres_db: str) -> None:  # noqa: F811
    proc, url = launch("--db", postgres_db, "--api-key", KEY, "--workers", "2")
    try:
        for trace in range(1, 21):
            assert post(url, batch(trace, 2)).json()["stored"] == 2
        assert len(get(url, "/api/traces?limit=100").json()["traces"]) == 20
        assert len(worker_pids(proc.pid)) == 2
    finally:
        assert stop(proc) == 0
    assert proc.stderr is not None
    said = proc.stderr.read()
    assert "(2 worker processes)" in said
    assert "fallom serve: stopped" in said


# -- the command line ------------------------------------------------------------------------
def serve_cli(*args: str, env: Dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fallom", "serve", *args], text=True,
                          capture_output=True, timeout=60, env={**os.environ, **(env or {})})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_database_is_one_line_naming_the_host_never_the_password() -> None:
    port = free_port()
    done = serve_cli("--port", "0", "--db", f"postgresql://fallom:{SECRET}@127.0.0.1:{port}/x")
    assert done.returncode == 2
    assert done.stderr.startswith("fallom serve: ")
    assert len(done.stderr.strip().splitlines()) == 1
    assert f"127.0.0.1:{port}" in done.stderr
    assert SECRET not in done.stderr + done.stdout


def test_a_wrong_scheme_names_the_accepted_ones() -> None:
    done = serve_cli("--port", "0", "--db", f"mysql://root:{SECRET}@127.0.0.1/x")
    assert done.returncode == 2
    assert "postgresql://" in done.stderr
    assert "sqlite:///" in done.stderr
    assert SECRET not in done.stderr
    assert "Traceback" not in done.stderr


def test_workers_on_sqlite_are_refused(tmp_path: Path) -> None:
    done = serve_cli("--port", "0", "--db", str(tmp_path / "t.db"), "--workers", "2")
    assert done.returncode == 2
    assert "SQLite" in done.stderr


def test_the_database_url_may_come_from_the_environment_and_its_password_is_not_shown(
        postgres_db: str) -> None:  # noqa: F811
    user, place = postgres_db.split("://", 1)[1].split("@", 1)  # the server trusts local users
    alias = f"postgres://{user}:{SECRET}@{place}"  # the short form of the scheme
    proc, url = launch(env={"FALLOM_DATABASE_URL": alias})
    try:
        assert post(url, batch(1, 2)).json()["stored"] == 2
    finally:
        stop(proc)
    assert proc.stdout is not None
    assert proc.stderr is not None
    said = proc.stdout.read() + proc.stderr.read()
    assert f"storing traces in postgresql://{user}@{place}" in said
    assert SECRET not in said


def test_sqlite_urls_and_what_is_printed(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "t.db"
    proc = subprocess.Popen([sys.executable, "-m", "fallom", "serve", "--port", "0", "--db",
                             f"sqlite:///{path}", "--retention", "30d"], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        exported = {}
        while "FALLOM_BASE_URL" not in exported:
            name, _, value = proc.stdout.readline().strip()[len("export "):].partition("=")
            exported[name] = value
        url = exported["FALLOM_TRACES_URL"]
        assert post(url, batch(1, 1)).json()["stored"] == 1
    finally:
        stop(proc)
    assert exported["FALLOM_BASE_URL"] == url  # what fallom.evals reads
    assert path.exists()
    assert proc.stderr is not None
    said = proc.stderr.read()
    assert f"storing traces in {path}" in said
    assert "keeping traces for 30 days" in said


@pytest.mark.parametrize(("args", "env", "says"), [
    (["--retention", "soon"], {}, "--retention"),
    ([], {"FALLOM_RETENTION": "0d"}, "FALLOM_RETENTION")])
def test_a_bad_retention_is_one_line_and_exit_2(tmp_path: Path, args: List[str],
                                                env: Dict[str, str], says: str) -> None:
    done = serve_cli("--port", "0", "--db", str(tmp_path / "t.db"), *args, env=env)
    assert done.returncode == 2
    assert says in done.stderr
    assert "30d" in done.stderr  # what is accepted
    assert "Traceback" not in done.stderr


def test_migrate_brings_the_schema_up_to_date_and_exits(postgres_db: str) -> None:  # noqa: F811
    first = serve_cli("migrate", "--db", postgres_db)
    assert first.returncode == 0, first.stderr
    again = serve_cli("migrate", "--db", postgres_db)
    assert again.returncode == 0
    assert "nothing to do" in again.stdout
    assert first.stdout != again.stdout


def test_without_the_server_extra_fallom_serve_says_what_to_install(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['starlette'] = None\n"  # as if it were not installed
            "from fallom.cli._main import main\n"
            "sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", code, "serve", "--port", "0", "--db",
                           str(tmp_path / "t.db")], text=True, capture_output=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "pip install -e '.[server]'" in done.stderr
    light = subprocess.run([sys.executable, "-c", "import fallom, sys; print(sorted(m for m in "
                            "sys.modules if m.split('.')[0] in ('starlette', 'uvicorn', "
                            "'sqlalchemy', 'psycopg', 'fallom.server')))"],
                           text=True, capture_output=True, timeout=60, check=True)
    assert light.stdout.strip() == "[]"  # the SDK imports none of the server


# -- the time limits of a client without a key ----------------------------------------------
@pytest.fixture
def strict(tmp_path: Path) -> Iterator[FallomServer]:
    running = serve(port=0, db=str(tmp_path / "t.db"), api_keys=[KEY],
                    limits=ServeLimits(request_timeout=0.5, idle_timeout=5.0))
    yield running
    running.close()


def trickle(server: FallomServer, head: bytes, pieces: List[bytes]) -> Tuple[bytes, float]:
    """Send a head, then each piece 0.1 s apart until the server hangs up; what came back,
    and how long after the head the server closed the connection."""
    host, port = server.httpd.server_address[:2]
    closed = threading.Event()
    with socket.create_connection((host, port), timeout=10) as sock:

        def send() -> None:
            for piece in pieces:
                if closed.wait(0.1):
                    return
                try:
                    sock.sendall(piece)
                except OSError:
                    return

        started = time.monotonic()
        sock.sendall(head)
        sender = threading.Thread(target=send)
        sender.start()
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
        took = time.monotonic() - started
        closed.set()
        sender.join()
    return answer, took


def test_a_body_without_a_valid_key_cannot_trickle_past_the_request_timeout(
        strict: FallomServer) -> None:
    head = b"POST /v1/traces HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n"
    answer, took = trickle(strict, head, [b"x"] * 40)  # 4 s of bytes, each well in time
    assert answer.split(b" ", 2)[1] == b"401"
    assert took < 2.5  # cut at the request timeout (0.5 s), not after the trickle


def test_a_key_s_holder_sends_its_body_at_its_own_pace(strict: FallomServer) -> None:
    import json

    body = json.dumps(batch(3, 2)).encode()
    head = (b"POST /v1/traces HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            b"Authorization: Bearer " + KEY.encode() + b"\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    pieces = [body[i:i + 40] for i in range(0, len(body), 40)]  # longer than the deadline
    assert len(pieces) > 6
    answer, _took = trickle(strict, head, pieces)
    assert answer.split(b" ", 2)[1] == b"200", answer
    assert len(spans_of(strict.url, 3)) == 2


def test_answers_are_sent_at_once_not_held_for_the_client_s_ack(strict: FallomServer) -> None:
    # With Nagle's algorithm on, an answer's body waits for the ACK of its head, which a
    # client delays ~40 ms: every request on a kept-alive connection took 44 ms.
    with requests.Session() as session:
        assert session.get(strict.url + "/configs", headers=AUTH, timeout=10).ok
        (connection,) = strict._server.server_state.connections  # the session's, kept alive
        sock = connection.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_pipelined_requests_without_host_are_each_answered(strict: FallomServer) -> None:
    auth = b"Authorization: Bearer " + KEY.encode() + b"\r\n"
    host, port = strict.httpd.server_address[:2]
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"GET /configs HTTP/1.1\r\n" + auth + b"\r\n"  # both in one segment
                     b"GET /prompts HTTP/1.1\r\n" + auth + b"Connection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.count(b"HTTP/1.1 200 OK") == 2, answer
    assert b'{"prompts": []}' in answer
