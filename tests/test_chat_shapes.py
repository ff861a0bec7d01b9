"""``messagesOf`` (ui/chat.js, run by Node as shipped) reads every SDK's stored LLM span as a
conversation: records go through a real ``fallom serve`` and come back from
``/api/traces/{id}`` exactly as the page reads them (issue 29, point 2).

The chat as drawn in Chromium is checked by test_web_ui_trace.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import requests

from fallom.providers.anthropic import read_message
from fallom.providers.google import read_generate_content
from fallom.providers.openai import read_chat_completion, read_response

NODE = shutil.which("node") or shutil.which("nodejs")
pytestmark = pytest.mark.skipif(NODE is None, reason="needs Node.js to run ui/chat.js")
pytest.importorskip("starlette")

KEY = "chat-shapes-key"
XSS = "<img src=x onerror=alert(1)>"
FIXTURES = Path(__file__).parent / "reference" / "fallom_0_2_7_records.json"

# chat.js imports dom.js, which looks up the page's <main> when loaded: a document that has none.
RUN = """
globalThis.document = { getElementById: () => null };
const fs = require("fs");
const spans = JSON.parse(fs.readFileSync(0, "utf8"));
import(require("url").pathToFileURL(process.argv[1]).href).then(({ messagesOf }) => {
  console.log(JSON.stringify(spans.map((span) => messagesOf(span))));
});
"""


def messages_of(spans: List[Dict[str, Any]], tmp_path: Path) -> List[Dict[str, Any]]:
    """``messagesOf`` of each span, run by Node on chat.js as shipped."""
    ui = resources.files("fallom.server") / "ui"
    for name in ("chat.js", "dom.js", "format.js"):
        text = (ui / name).read_text(encoding="utf-8").replace('.js";', '.mjs";')
        (tmp_path / name.replace(".js", ".mjs")).write_text(text, encoding="utf-8")
    done = subprocess.run([str(NODE), "-e", RUN, str(tmp_path / "chat.mjs")],
                          input=json.dumps(spans), capture_output=True, text=True, timeout=60,
                          check=True)
    out: List[Dict[str, Any]] = json.loads(done.stdout)
    return out


def brief(found: Dict[str, Any]) -> Dict[str, Any]:
    """A conversation as (role, texts, images, tool calls, tool call id) a message."""
    def one(msg: Dict[str, Any]) -> List[Any]:
        parts = [p.get("text", f"[image] {p['url']}" if p["type"] == "image" else p.get("value"))
                 for p in msg["content"]]
        calls = [[c["name"], c["arguments"]] for c in msg["tool_calls"]]
        return [msg["role"], parts, calls, msg["tool_call_id"]]
    return {side: [one(m) for m in found[side]] for side in ("input", "output")}


def v2(span: int, method: str, request: Any, response: Any) -> Dict[str, Any]:
    """A v2 wire record as this SDK and the TypeScript SDK send an LLM call."""
    return {"trace_id": "c4" * 16, "span_id": f"{span:016x}", "name": method, "kind": "llm",
            "model": "m", "start_time": f"2026-01-01T00:00:{span:02d}.000Z", "duration_ms": 5,
            "status": "OK", "session_id": "s", "config_key": "c",
            "attributes": {"fallom.sdk_version": "2", "fallom.method": method,
                           "fallom.raw.request": json.dumps(request),
                           "fallom.raw.response": json.dumps(response)}}


WEATHER = {"city": "Paris"}
OPENAI_TOOL_CALL = {"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": json.dumps(WEATHER)}}
RECORDS = [
    v2(1, "chat.completions.create",
       {"model": "gpt-4o", "temperature": 0.2, "messages": [
           {"role": "system", "content": "Be brief"},
           {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                        {"type": "image_url",
                                         "image_url": {"url": "https://x.test/cat.png"}}]},
           {"role": "assistant", "content": None, "tool_calls": [OPENAI_TOOL_CALL]},
           {"role": "tool", "tool_call_id": "call_1", "content": "18C"}]},
       read_chat_completion({"model": "gpt-4o", "choices": [{"finish_reason": "tool_calls",
                                                             "message": {
                                                                 "content": None,
                                                                 "tool_calls": [
                                                                     OPENAI_TOOL_CALL]}}]}
                            )["raw_response"]),
    v2(2, "responses.create",
       {"model": "gpt-4o", "instructions": "Answer in French", "input": [
           {"role": "user", "content": [{"type": "input_text", "text": "Weather?"},
                                        {"type": "input_image", "image_url": "https://x.test/a.png"}]},
           {"type": "function_call", "call_id": "c9", "name": "get_weather",
            "arguments": json.dumps(WEATHER)},
           {"type": "function_call_output", "call_id": "c9", "output": "18C"}]},
       read_response({"id": "r", "model": "gpt-4o", "status": "completed", "output": [
           {"type": "message", "content": [{"type": "output_text", "text": "Il fait 18C"}]}]}
       )["raw_response"]),
    v2(3, "messages.create",
       {"model": "claude", "system": "Be brief", "max_tokens": 50, "messages": [
           {"role": "user", "content": "Weather in Paris?"},
           {"role": "assistant", "content": [
               {"type": "text", "text": "Checking."},
               {"type": "tool_use", "id": "tu1", "name": "get_weather", "input": WEATHER}]},
           {"role": "user", "content": [
               {"type": "tool_result", "tool_use_id": "tu1", "content": "18C"}]}]},
       read_message({"id": "m", "model": "claude", "stop_reason": "tool_use", "content": [
           {"type": "tool_use", "id": "tu2", "name": XSS, "input": {"q": XSS}}]}
       )["raw_response"]),
    v2(4, "generateContent",
       {"model": "gemini", "config": {"system_instruction": "Be brief"}, "contents": [
           {"role": "user", "parts": [{"text": "Weather?"},
                                      {"file_data": {"file_uri": "gs://b/cat.png",
                                                     "mime_type": "image/png"}}]},
           {"role": "model", "parts": [{"function_call": {"name": "get_weather",
                                                          "args": WEATHER}}]},
           {"role": "user", "parts": [{"function_response": {"name": "get_weather",
                                                             "response": {"t": "18C"}}}]}]},
       read_generate_content({"candidates": [{"content": {"parts": [{"text": "18C"}]},
                                              "finish_reason": "STOP"}]})["raw_response"]),
    v2(5, "streamText", {"messages": [{"role": "user", "content": "hi"}]},  # TypeScript SDK
       {"text": "hello", "finishReason": "stop"}),
]

OTEL_MESSAGES = [{"role": "user", "parts": [{"type": "text", "content": "Weather?"}]},
                 {"role": "assistant", "parts": [{"type": "tool_call", "id": "t1",
                                                  "name": "get_weather", "arguments": WEATHER}]},
                 {"role": "tool", "parts": [{"type": "tool_call_response", "id": "t1",
                                             "response": "18C"}]}]


def otlp_span(number: int, attributes: Dict[str, Any]) -> Dict[str, Any]:
    return {"traceId": "d5" * 16, "spanId": f"{0xd500 + number:016x}", "name": f"chat {number}",
            "startTimeUnixNano": str(1_767_225_600_000_000_000 + number * 1_000_000),
            "endTimeUnixNano": str(1_767_225_600_000_000_000 + number * 1_000_000 + 5000),
            "attributes": [{"key": k, "value": {"stringValue": v if isinstance(v, str)
                                                else json.dumps(v)}}
                           for k, v in attributes.items()]}


OTLP = [
    otlp_span(1, {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
                  "gen_ai.system_instructions": [{"type": "text", "content": "Be brief"}],
                  "gen_ai.input.messages": OTEL_MESSAGES,
                  "gen_ai.output.messages": [{"role": "assistant", "finish_reason": "stop",
                                              "parts": [{"type": "text", "content": "18C"}]}]}),
    otlp_span(2, {"gen_ai.system": "openai", "llm.request.model": "gpt-3.5",  # OpenLLMetry
                  "gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": "Be brief",
                  "gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": "hi",
                  "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "yo"}),
]


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Dict[str, Any]]]:
    """Every record above (and 0.2.7's own), posted to a real server and read back."""
    from fallom.server import serve

    running = serve(port=0, db=str(tmp_path_factory.mktemp("chat") / "t.db"), api_keys=[KEY])
    try:
        headers = {"Authorization": f"Bearer {KEY}"}
        old = json.loads(FIXTURES.read_text())
        legacy = {**RECORDS[4], "trace_id": "e6" * 16, "span_id": "e6" * 8, "name": "legacy",
                  "attributes": {"gen_ai.prompt.0.role": "user",
                                 "gen_ai.prompt.0.content": "Q1",
                                 "gen_ai.completion.0.content": "A1"}}
        for body in ({"traces": RECORDS + old + [legacy]},
                     {"resourceSpans": [{"scopeSpans": [{"spans": OTLP}]}]}):
            requests.post(f"{running.url}/v1/traces", json=body, headers=headers,
                          timeout=10).raise_for_status()
        spans: Dict[str, Dict[str, Any]] = {}
        for trace_id in {r["trace_id"] for r in RECORDS + old + [legacy]} | {"d5" * 16}:
            found = requests.get(f"{running.url}/api/traces/{trace_id}", headers=headers,
                                 timeout=10)
            assert found.status_code == 200, (trace_id, found.text)
            for span in found.json()["spans"]:
                spans[f"{span['name']}/{span['span_id']}"] = span
        yield spans
    finally:
        running.close()


def read(stored: Dict[str, Dict[str, Any]], tmp_path: Path, *keys: str) -> List[Dict[str, Any]]:
    return [brief(found) for found in messages_of([stored[k] for k in keys], tmp_path)]


def key(stored: Dict[str, Dict[str, Any]], name: str, number: int) -> str:
    return next(k for k in stored if k == f"{name}/{number:016x}")


def test_this_sdks_provider_calls_read_as_conversations(
        stored: Dict[str, Dict[str, Any]], tmp_path: Path) -> None:
    openai, responses, anthropic, google, typescript = read(stored, tmp_path, *(
        key(stored, r["name"], int(r["span_id"], 16)) for r in RECORDS))
    assert openai == {"input": [
        ["system", ["Be brief"], [], None],
        ["user", ["What is this?", "[image] https://x.test/cat.png"], [], None],
        ["assistant", [], [["get_weather", WEATHER]], None],
        ["tool", ["18C"], [], "call_1"]],
        "output": [["assistant", [], [["get_weather", WEATHER]], None]]}
    assert responses == {"input": [
        ["system", ["Answer in French"], [], None],
        ["user", ["Weather?", "[image] https://x.test/a.png"], [], None],
        ["assistant", [], [["get_weather", WEATHER]], None],
        ["tool", ["18C"], [], "c9"]],
        "output": [["assistant", ["Il fait 18C"], [], None]]}
    assert anthropic == {"input": [
        ["system", ["Be brief"], [], None],
        ["user", ["Weather in Paris?"], [], None],
        ["assistant", ["Checking."], [["get_weather", WEATHER]], None],
        ["tool", ["18C"], [], "tu1"]],
        "output": [["assistant", [], [[XSS, {"q": XSS}]], None]]}
    assert google == {"input": [
        ["system", ["Be brief"], [], None],
        ["user", ["Weather?", "[image] gs://b/cat.png"], [], None],
        ["assistant", [], [["get_weather", WEATHER]], None],
        ["tool", [{"t": "18C"}], [], None]],
        "output": [["assistant", ["18C"], [], None]]}
    assert typescript == {"input": [["user", ["hi"], [], None]],
                          "output": [["assistant", ["hello"], [], None]]}


def test_records_of_fallom_0_2_7_read_as_conversations(
        stored: Dict[str, Dict[str, Any]], tmp_path: Path) -> None:
    old = json.loads(FIXTURES.read_text())
    found = {r["attributes"]["fallom.method"] + "/" + r["status"] + str(i): got for i, (r, got) in
             enumerate(zip(old, read(stored, tmp_path, *(
                 key(stored, r["name"], int(r["span_id"], 16)) for r in old))))}
    user = [["user", ["Say hello"], [], None]]
    assert found["chat.completions.create/OK0"] == {
        "input": user, "output": [["assistant", ["Hello"], [], None]]}
    assert found["chat.completions.create/OK1"]["output"] == [
        ["assistant", [], [["get_weather", WEATHER]], None]]
    assert found["responses.create/OK2"] == {
        "input": user, "output": [["assistant", ["Hello"], [], None]]}
    assert found["chat.completions.create/ERROR3"] == {"input": [], "output": []}
    assert found["messages.create/OK4"]["input"] == [["system", ["Be brief"], [], None], *user]
    assert found["generateContent/OK5"]["input"] == user


def test_otlp_genai_and_openllmetry_spans_read_as_conversations(
        stored: Dict[str, Dict[str, Any]], tmp_path: Path) -> None:
    genai, openllmetry = read(stored, tmp_path, key(stored, "chat 1", 0xd501),
                              key(stored, "chat 2", 0xd502))
    assert genai == {"input": [
        ["system", ["Be brief"], [], None],
        ["user", ["Weather?"], [], None],
        ["assistant", [], [["get_weather", WEATHER]], None],
        ["tool", ["18C"], [], "t1"]],
        "output": [["assistant", ["18C"], [], None]]}
    assert openllmetry == {"input": [["system", ["Be brief"], [], None],
                                     ["user", ["hi"], [], None]],
                           "output": [["assistant", ["yo"], [], None]]}


def test_indexed_attributes_of_a_stored_record_and_what_is_no_conversation(
        stored: Dict[str, Dict[str, Any]], tmp_path: Path) -> None:
    legacy = next(k for k in stored if k.startswith("legacy/"))
    spans = [stored[legacy],
             {"kind": "llm", "input": {"question": "why", "model": "m"}, "output": "yes"},
             {"kind": "tool", "input": "a query", "output": "rows"},
             {"kind": "llm", "input": [{"role": "user"}, 3], "output": "x"}]
    assert [brief(found) for found in messages_of(spans, tmp_path)] == [
        {"input": [["user", ["Q1"], [], None]], "output": [["assistant", ["A1"], [], None]]},
        {"input": [], "output": []}, {"input": [], "output": []}, {"input": [], "output": []}]
