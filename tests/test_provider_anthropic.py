"""The real anthropic SDK against a local server speaking its JSON and SSE formats."""

from __future__ import annotations

import asyncio

import pytest

import fallom
from fallom.testing import CapturedSpans, view

from ._provider_server import ProviderServer

anthropic = pytest.importorskip("anthropic")

MESSAGES = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def session() -> fallom.FallomSession:
    return fallom.session(config_key="bot", session_id="s-1")


@pytest.fixture
def client(provider_server: ProviderServer, session: fallom.FallomSession) -> anthropic.Anthropic:
    return session.wrap_anthropic(
        anthropic.Anthropic(api_key="k", base_url=provider_server.url, max_retries=0))


def test_message(client: anthropic.Anthropic, spans: CapturedSpans) -> None:
    message = client.messages.create(model="claude-x", max_tokens=50, system="Be brief",
                                     messages=MESSAGES)
    assert message.content[0].text == "Hello"
    assert isinstance(client, anthropic.Anthropic)
    (record,) = spans
    assert record["name"] == "messages.create"
    assert record["model"] == "claude-x"
    assert view(record).input == {"system": "Be brief", "messages": MESSAGES}
    assert view(record).output == "Hello"
    assert (view(record).prompt_tokens, view(record).completion_tokens, view(record).total_tokens) == (
        9, 2, 11)
    assert record["attributes"]["gen_ai.request.max_tokens"] == 50
    assert record["attributes"]["gen_ai.response.finish_reasons"] == ["end_turn"]


def test_create_stream(client: anthropic.Anthropic, provider_server: ProviderServer,
                       spans: CapturedSpans) -> None:
    provider_server.first_chunk_delay = 0.25
    raw = client.__wrapped__  # type: ignore[attr-defined]
    expected = list(raw.messages.create(model="c", max_tokens=5, messages=MESSAGES, stream=True))
    events = list(client.messages.create(model="c", max_tokens=5, messages=MESSAGES, stream=True))
    assert [e.type for e in events] == [e.type for e in expected]
    (record,) = spans
    assert view(record).output == "Hello"
    assert (view(record).prompt_tokens, view(record).completion_tokens) == (9, 2)
    assert 250 <= view(record).time_to_first_token_ms <= view(record).duration_ms
    assert record["is_streaming"] is True


def test_messages_stream_context_manager(client: anthropic.Anthropic,
                                         provider_server: ProviderServer,
                                         spans: CapturedSpans) -> None:
    provider_server.first_chunk_delay = 0.2
    with client.messages.stream(model="c", max_tokens=5, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        assert stream.get_final_message().usage.output_tokens == 2
        assert spans == []  # the span lasts until the block exits
    assert text == "Hello"
    (record,) = spans
    assert record["name"] == "messages.create"
    assert view(record).output == "Hello"
    assert view(record).total_tokens == 11
    assert 200 <= view(record).time_to_first_token_ms <= view(record).duration_ms


def test_tool_use(client: anthropic.Anthropic, spans: CapturedSpans) -> None:
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    client.messages.create(model="c", max_tokens=5, messages=MESSAGES, tools=tools)
    list(client.messages.create(model="c", max_tokens=5, messages=MESSAGES, tools=tools,
                                stream=True))
    plain, streamed = spans
    assert view(plain).output == {"text": "", "toolCalls": [
        {"id": "toolu_1", "name": "get_weather", "arguments": {"city": "Paris"}}]}
    assert view(streamed).output == {"text": "", "toolCalls": [
        {"id": "toolu_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}]}


def test_async_client(provider_server: ProviderServer, session: fallom.FallomSession,
                      spans: CapturedSpans) -> None:
    raw = anthropic.AsyncAnthropic(api_key="k", base_url=provider_server.url, max_retries=0)
    client = session.wrap_anthropic(raw)

    async def count_raw_events() -> int:
        stream = await raw.messages.create(model="c", max_tokens=5, messages=MESSAGES,
                                           stream=True)
        return len([e async for e in stream])

    expected = asyncio.run(count_raw_events())

    async def main() -> str:
        message = await client.messages.create(model="c", max_tokens=5, messages=MESSAGES)
        stream = await client.messages.create(model="c", max_tokens=5, messages=MESSAGES,
                                              stream=True)
        events = [e async for e in stream]
        async with client.messages.stream(model="c", max_tokens=5, messages=MESSAGES) as s:
            text = "".join([t async for t in s.text_stream])
        return message.content[0].text + str(len(events)) + text

    assert asyncio.run(main()) == f"Hello{expected}Hello"
    assert [view(r).output for r in spans] == ["Hello", "Hello", "Hello"]
    assert all(view(r).total_tokens == 11 for r in spans)


def test_errors(client: anthropic.Anthropic, provider_server: ProviderServer,
                spans: CapturedSpans) -> None:
    provider_server.error = (429, {"type": "error", "error": {"type": "rate_limit_error",
                                                              "message": "slow down"}})
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model="c", max_tokens=5, messages=MESSAGES)
    (record,) = spans
    assert record["status"] == "ERROR"
    assert record["attributes"]["http.response.status_code"] == 429
    assert "slow down" in record["error_message"]
