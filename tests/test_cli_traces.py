"""``fallom traces`` on what a careless or hostile sender stored: deep and cyclic parent
links, unknown token counts, and a key that must not cross the network in clear
(issue 24, points 9, 13 and 17)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
from rich.console import Console

from fallom.console import print_traces
from fallom.server import FallomServer
from fallom.server._app import serve

from .test_serve import KEY, record, traces_cli


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FallomServer]:
    running = serve(port=0, db=str(tmp_path / "t.db"), api_keys=[KEY])
    yield running
    running.close()


def store(server: FallomServer, records: List[Dict[str, Any]]) -> None:
    import requests

    reply = requests.post(f"{server.url}/v1/traces", json={"traces": records}, timeout=30,
                          headers={"Authorization": f"Bearer {KEY}"})
    assert reply.json()["stored"] == len(records), reply.text


def span(i: int, parent: Optional[int], trace: int = 5, **extra: Any) -> Dict[str, Any]:
    linked = {} if parent is None else {"parent_span_id": f"{parent + 1:016x}"}
    return record(i, trace=trace, start_time=f"2026-01-01T00:00:00.{i:06d}Z", **linked, **extra)


def shown_names(text: str) -> List[str]:
    return [word.rstrip(":") for line in text.splitlines() for word in line.split() if word.startswith(
        "span-")]


def test_a_parent_chain_thousands_deep_is_shown_whole(server: FallomServer) -> None:
    store(server, [span(i, i - 1 if i else None) for i in range(3000)])
    shown = traces_cli(server, "show", f"{5:032x}")
    assert shown.stderr == ""
    names = shown_names(shown.stdout)
    assert set(names) == {f"span-{i}" for i in range(3000)}
    assert max(len(line) for line in shown.stdout.splitlines()) < 400  # indents stay bounded
    assert "continues below" in shown.stdout


def test_spans_whose_parents_form_a_cycle_are_shown_cut_at_the_repeat(
        server: FallomServer) -> None:
    # span-0 is a root; span-1 -> span-2 -> span-3 -> span-1 a cycle, span-4 hangs from it
    store(server, [span(0, None), span(1, 3), span(2, 1), span(3, 2), span(4, 2),
                   span(5, 5)])  # span-5 is its own parent
    shown = traces_cli(server, "show", f"{5:032x}").stdout
    assert set(shown_names(shown)) == {f"span-{i}" for i in range(6)}
    lines = shown.splitlines()
    again = [line for line in lines if "shown above" in line]
    assert len(again) == 2  # each cycle cut once, where a span would repeat
    assert any("span-1" in line for line in again)
    assert any("span-5" in line for line in again)


def test_the_debug_console_renders_cycles_and_depth_the_same_way() -> None:
    out = io.StringIO()
    chain = [{**span(i, i - 1 if i else None), "kind": "span"} for i in range(2000)]
    print_traces([*chain, span(7000, 7001), span(7001, 7000)],
                 Console(file=out, width=80, color_system=None))
    text = out.getvalue()
    assert set(shown_names(text)) == {f"span-{i}" for i in (*range(2000), 7000, 7001)}
    assert max(len(line) for line in text.splitlines()) <= 80


def test_unknown_tokens_are_a_dash_and_zero_is_zero(server: FallomServer) -> None:
    store(server, [record(0, trace=1, start_time="2026-01-01T00:00:01.000000Z"),
                   record(1, trace=2, total_tokens=0, start_time="2026-01-01T00:00:02.000000Z")])
    rows = [line.split() for line in traces_cli(server).stdout.splitlines()[1:]]
    tokens = {row[0]: row[5] for row in rows}
    assert tokens == {f"{1:032x}": "-", f"{2:032x}": "0"}
    listed = json.loads(traces_cli(server, "--json").stdout)["traces"]
    assert {t["trace_id"][-1]: t["total_tokens"] for t in listed} == {"1": None, "2": 0}


def test_a_key_is_not_sent_in_clear_to_another_host(server: FallomServer) -> None:
    port = server.httpd.server_address[1]
    remote = f"http://0.0.0.0:{port}"  # this machine, but not a loopback name
    for args, env in ((["--url", remote], {}),  # the key from FALLOM_API_KEY
                      (["--url", remote, "--api-key", KEY], {"FALLOM_API_KEY": ""}),
                      ([], {"FALLOM_TRACES_URL": "http://user@127.0.0.1:9"})):
        refused = traces_cli(server, *args, env=env, check=False)
        assert refused.returncode == 2, refused
        assert "refusing to send the API key in clear" in refused.stderr
        assert "--allow-insecure-http" in refused.stderr
        assert "Traceback" not in refused.stderr
    allowed = traces_cli(server, "--url", remote, "--allow-insecure-http")
    assert allowed.stdout.startswith("TRACE")
    assert traces_cli(server).returncode == 0  # loopback http is fine
