"""Extractors: read SDK responses and their JSON forms without importing the SDKs."""

from __future__ import annotations

from typing import Any, Dict

import pytest

import fallom
from fallom import extractors
from fallom.testing import CapturedSpans, view
from fallom.tracing import _extract

from . import _provider_server as wire

CHAT_JSON = wire.openai_chat({"model": "gpt-4o"})
MESSAGE_JSON = wire.anthropic_message({"model": "claude-x"})


def test_openai_chat_json() -> None:
    fields = extractors.extract(CHAT_JSON)
    assert fields is not None
    assert (fields["model"], fields["prompt_tokens"], fields["completion_tokens"],
            fields["total_tokens"], fields["output"]) == ("gpt-4o-2024-07-18", 9, 2, 11, "Hello")
    assert fields["attributes"] == {"gen_ai.usage.cached_tokens": 4,
                                    "gen_ai.usage.reasoning_tokens": 1}


def test_anthropic_json_with_tool_use() -> None:
    fields = extractors.extract(wire.anthropic_message({"model": "c", "tools": [{}]}))
    assert fields is not None
    assert fields["output"] == {"content": "", "tool_calls": [
        {"id": "toolu_1", "name": "get_weather", "arguments": {"city": "Paris"}}]}
    assert fields["finish_reason"] == ["tool_use"]


def test_other_json_shapes() -> None:
    assert extractors.extract(wire.openai_response({"model": "m"}))["output"] == "Hello"
    assert extractors.extract(wire.openai_completion({"model": "m"}))["output"] == "Hello"
    assert extractors.extract(wire.openai_embeddings({"model": "m"}))["output"] == {
        "embeddings": 1, "dimensions": 3}
    assert extractors.extract({"answer": 42}) is None
    assert extractors.extract("text") is None


def test_sdk_objects() -> None:
    openai_types = pytest.importorskip("openai.types.chat")
    anthropic_types = pytest.importorskip("anthropic.types")
    genai_types = pytest.importorskip("google.genai.types")
    chat = openai_types.ChatCompletion.model_validate(CHAT_JSON)
    assert extractors.extract(chat)["total_tokens"] == 11
    message = anthropic_types.Message.model_validate(MESSAGE_JSON)
    assert extractors.extract(message)["output"] == "Hello"
    response = genai_types.GenerateContentResponse.model_validate(
        wire.google_response({}))
    fields = extractors.extract(response)
    assert (fields["model"], fields["total_tokens"], fields["output"]) == (
        "gemini-2.0-flash-001", 11, "Hello")


def test_trace_llm_reads_a_returned_sdk_response(spans: CapturedSpans) -> None:
    openai_types = pytest.importorskip("openai.types.chat")

    @fallom.trace_llm
    def ask(question: str) -> Any:
        return openai_types.ChatCompletion.model_validate(CHAT_JSON)

    ask("hi")
    (record,) = spans
    assert (record["model"], view(record).total_tokens, view(record).output) == (
        "gpt-4o-2024-07-18", 11, "Hello")


def test_register_an_extractor_for_your_own_type(spans: CapturedSpans) -> None:
    class MyReply:
        def __init__(self, text: str) -> None:
            self.text = text

    def read(reply: MyReply) -> Dict[str, Any]:
        return {"output": reply.text, "model": "in-house", "completion_tokens": 3}

    extractors.register(MyReply, read)

    @fallom.trace_llm
    def ask() -> MyReply:
        return MyReply("yes")

    ask()
    assert (view(spans[0]).output, spans[0]["model"], view(spans[0]).completion_tokens) == (
        "yes", "in-house", 3)


def test_register_rejects_nonsense() -> None:
    with pytest.raises(TypeError, match="callable"):
        extractors.register(dict, "nope")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="target"):
        extractors.register(42, lambda r: {})  # type: ignore[arg-type]


def test_classes_made_per_call_are_not_kept_alive(spans: CapturedSpans) -> None:
    import gc
    import weakref

    @fallom.trace_llm
    def structured(i: int) -> Any:
        return type(f"Answer{i}", (), {"text": "hi"})()  # as libraries that build models per call

    first = weakref.ref(type(structured(0)))
    for i in range(1, 3000):
        structured(i)
    fallom.flush(5.0)
    spans.clear()
    gc.collect()
    assert first() is None  # the lookup cache let it go
    assert len(_extract._CACHE) <= 1024
