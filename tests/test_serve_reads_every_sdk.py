"""``fallom serve`` reads the records of every Fallom SDK, tokens included.

``reference/fallom_0_2_7_records.json`` is what the published ``fallom``
0.2.7 really sent (rerun ``python -m tests.reference.make_fixtures``); the
TypeScript records below follow ``src/trace/wrappers/*.ts`` of
``@fallom/trace``, which sends whole usage objects (Google's in camelCase).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import requests

import fallom
from fallom.server import serve
from fallom.testing import view

KEY = "every-sdk-key"
FIXTURES = Path(__file__).parent / "reference" / "fallom_0_2_7_records.json"


def _ts(span: int, method: str, usage: Dict[str, Any], **extra: Any) -> Dict[str, Any]:
    attributes = {"fallom.sdk_version": "2", "fallom.method": method,
                  "fallom.raw.usage": json.dumps(usage),
                  "fallom.raw.request": json.dumps({"messages": [{"role": "user",
                                                                  "content": "hi"}]}),
                  "fallom.raw.response": json.dumps({"text": "hello", "finishReason": "stop"}),
                  "fallom.raw.timings": json.dumps({"requestStart": 0, "requestEnd": 12,
                                                    "responseEnd": 12, "totalDurationMs": 12})}
    attributes.update(extra.pop("attributes", {}))
    return {"config_key": "ts-bot", "session_id": "ts-s-1", "customer_id": "ts-u",
            "trace_id": "ab" * 16, "span_id": f"{span:016x}", "name": method, "kind": "llm",
            "model": "m", "start_time": f"2026-01-01T00:00:0{span}.000Z",
            "end_time": f"2026-01-01T00:00:0{span}.012Z", "duration_ms": 12, "status": "OK",
            "attributes": attributes, **extra}


TYPESCRIPT = [
    _ts(1, "chat.completions.create", {"prompt_tokens": 10, "completion_tokens": 5,
                                       "total_tokens": 15,
                                       "prompt_tokens_details": {"cached_tokens": 0}}),
    _ts(2, "messages.create", {"input_tokens": 7, "output_tokens": 3,
                               "cache_read_input_tokens": 0}),
    _ts(3, "generateContent", {"promptTokenCount": 4, "candidatesTokenCount": 6,
                               "totalTokenCount": 10}),
    _ts(4, "streamText", {"promptTokens": 2, "completionTokens": 8},
        time_to_first_token_ms=40, is_streaming=True,
        attributes={"fallom.time_to_first_token_ms": 40}),
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Any]:
    running = serve(port=0, db=str(tmp_path / "t.db"), api_keys=[KEY])
    yield running
    running.close()


def post(url: str, record: Any) -> requests.Response:
    return requests.post(f"{url}/v1/traces", json=record, timeout=10,
                         headers={"Authorization": f"Bearer {KEY}"})


def get(url: str, path: str) -> Any:
    response = requests.get(f"{url}{path}", headers={"Authorization": f"Bearer {KEY}"},
                            timeout=10)
    response.raise_for_status()
    return response.json()


def spans_of(url: str, trace_id: str) -> List[Dict[str, Any]]:
    return list(get(url, f"/api/traces/{trace_id}")["spans"])


def test_records_of_the_published_python_sdk(server: Any) -> None:
    records = json.loads(FIXTURES.read_text())
    assert len(records) >= 5
    for record in records:
        reply = post(server.url, record)  # one bare record per request, as 0.2.7 sends
        assert reply.status_code == 200, reply.text
        assert reply.headers["Fallom-Ingest"] == "batch, gzip"
    stored = [span for record in records for span in spans_of(server.url, record["trace_id"])]
    by_name = {(s["name"], s["status"]): s for s in stored}
    chat = next(s for s in stored if s["name"] == "chat.completions.create" and
                s["status"] == "OK" and "tools" not in s["input"])
    assert (chat["prompt_tokens"], chat["completion_tokens"], chat["total_tokens"]) == (9, 2, 11)
    assert chat["input"] == [{"role": "user", "content": "Say hello"}]
    assert chat["output"] == "Hello"
    claude = by_name[("messages.create", "OK")]
    assert (claude["prompt_tokens"], claude["completion_tokens"], claude["total_tokens"]) == (
        9, 2, 11)
    google = by_name[("generateContent", "OK")]
    assert google["total_tokens"] == 11
    assert by_name[("responses.create", "OK")]["total_tokens"] == 11
    assert by_name[("chat.completions.create", "ERROR")]["total_tokens"] is None
    listing = get(server.url, "/api/traces?limit=100")["traces"]
    assert sum(t["total_tokens"] or 0 for t in listing) == sum(
        s["total_tokens"] or 0 for s in stored)
    counted = {s["trace_id"] for s in stored if s["total_tokens"] is not None}
    assert {t["trace_id"] for t in listing if t["total_tokens"] is None} == {
        s["trace_id"] for s in stored} - counted  # unknown, not 0


def test_records_of_the_typescript_sdk(server: Any) -> None:
    for record in TYPESCRIPT:
        assert post(server.url, record).status_code == 200
    spans = {s["attributes"]["fallom.method"]: s for s in spans_of(server.url, "ab" * 16)}
    assert spans["chat.completions.create"]["total_tokens"] == 15
    assert (spans["messages.create"]["prompt_tokens"],
            spans["messages.create"]["total_tokens"]) == (7, 10)
    assert spans["generateContent"]["completion_tokens"] == 6
    assert spans["streamText"]["total_tokens"] == 10
    assert spans["streamText"]["time_to_first_token_ms"] == 40
    assert spans["streamText"]["output"] == "hello"
    (listed,) = get(server.url, "/api/traces")["traces"]
    assert listed["total_tokens"] == 15 + 10 + 10 + 10


def test_records_of_this_sdk_and_of_earlier_fallom_versions(server: Any) -> None:
    fallom.init(api_key=KEY, traces_url=server.url)

    @fallom.trace_llm(model="x")
    def ask(q: str) -> str:
        fallom.current_span().record_usage(prompt_tokens=5, completion_tokens=6)
        return "yes"

    with fallom.session(config_key="c", session_id="ours"):
        ask("why")
    assert fallom.flush(5.0)
    old = {"trace_id": "cd" * 16, "span_id": "1" * 16, "name": "old", "kind": "llm",
           "start_time": "2026-01-01T00:00:00Z", "status": "OK", "duration_ms": 1.5,
           "session_id": "old", "prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3,
           "input": "q", "output": "a"}
    assert post(server.url, {"traces": [old]}).status_code == 200
    ours = get(server.url, "/api/traces?session_id=ours")["traces"]
    assert ours[0]["total_tokens"] == 11
    (mine,) = spans_of(server.url, ours[0]["trace_id"])
    assert (mine["input"], mine["output"], mine["total_tokens"]) == ({"q": "why"}, "yes", 11)
    (earlier,) = spans_of(server.url, "cd" * 16)
    assert (earlier["input"], earlier["output"], earlier["total_tokens"]) == ("q", "a", 3)


def test_fallom_traces_prints_the_tokens_of_0_2_7_records(server: Any) -> None:
    records = json.loads(FIXTURES.read_text())
    for record in records:
        post(server.url, record)
    env = {**os.environ, "FALLOM_TRACES_URL": server.url, "FALLOM_API_KEY": KEY}
    listing = subprocess.run([sys.executable, "-m", "fallom", "traces"], env=env,
                             capture_output=True, text=True, timeout=30, check=True).stdout
    assert "11" in listing.split()
    chat = next(r for r in records if r["name"] == "messages.create")
    shown = subprocess.run([sys.executable, "-m", "fallom", "traces", "show", chat["trace_id"]],
                           env=env, capture_output=True, text=True, timeout=30,
                           check=True).stdout
    assert "tokens 9/2/11" in shown
    assert view(chat).total_tokens == 11
