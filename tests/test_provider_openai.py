"""The real openai SDK against a local server speaking its JSON and SSE formats."""

from __future__ import annotations

import asyncio
import gc
from typing import Iterator

import pytest

import fallom
from fallom.testing import CapturedSpans, capture_spans, view

from ._provider_server import ProviderServer

openai = pytest.importorskip("openai")

MESSAGES = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def spans() -> Iterator[CapturedSpans]:
    """As the suite's, with the usage chunk asked of every server (this one takes it)."""
    fallom.init(openai_stream_usage=True)
    with capture_spans() as records:
        yield records


@pytest.fixture
def session() -> fallom.FallomSession:
    return fallom.session(config_key="bot", session_id="s-1", customer_id="u-1")


@pytest.fixture
def client(provider_server: ProviderServer, session: fallom.FallomSession) -> openai.OpenAI:
    raw = openai.OpenAI(api_key="sk-test", base_url=provider_server.url + "/v1", max_retries=0)
    return session.wrap_openai(raw)


def test_chat_completion(client: openai.OpenAI, spans: CapturedSpans) -> None:
    response = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                              temperature=0.3, max_tokens=20, top_p=0.9)
    assert response.choices[0].message.content == "Hello"
    (record,) = spans
    assert record["name"] == "chat.completions.create"
    assert record["kind"] == "llm"
    assert (record["session_id"], record["customer_id"], record["config_key"]) == (
        "s-1", "u-1", "bot")
    assert record["model"] == "gpt-4o-mini-2024-07-18"
    assert (view(record).prompt_tokens, view(record).completion_tokens, view(record).total_tokens) == (
        9, 2, 11)
    assert view(record).input == MESSAGES
    assert view(record).output == "Hello"
    attrs = record["attributes"]
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.request.temperature"] == 0.3
    assert attrs["gen_ai.request.max_tokens"] == 20
    assert attrs["gen_ai.request.top_p"] == 0.9
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["gen_ai.response.id"] == "chatcmpl-1"
    assert attrs["gen_ai.usage.cached_tokens"] == 4
    assert attrs["gen_ai.usage.reasoning_tokens"] == 1


def test_wrapped_client_passes_for_the_original(
    client: openai.OpenAI, provider_server: ProviderServer, spans: CapturedSpans
) -> None:
    assert isinstance(client, openai.OpenAI)
    raw = client.__wrapped__  # type: ignore[attr-defined]
    raw.chat.completions.create(model="m", messages=MESSAGES)
    assert spans == []  # the original client is left untraced


def test_wrapping_twice_or_by_two_sessions_records_once(
    client: openai.OpenAI, spans: CapturedSpans
) -> None:
    other = fallom.session(config_key="bot", session_id="s-2")
    twice = other.wrap_openai(fallom.session(config_key="x", session_id="y").wrap_openai(client))
    twice.chat.completions.create(model="m", messages=MESSAGES)
    assert [r["session_id"] for r in spans] == ["s-2"]


def test_the_wrapper_session_wins_over_the_context(
    client: openai.OpenAI, spans: CapturedSpans
) -> None:
    with fallom.session(config_key="other", session_id="elsewhere"), fallom.span("request"):
        client.chat.completions.create(model="m", messages=MESSAGES)
    call, request = spans
    assert call["session_id"] == "s-1"
    assert call["parent_span_id"] == request["span_id"]


def test_stream_is_unchanged_and_recorded(
    client: openai.OpenAI, provider_server: ProviderServer, spans: CapturedSpans
) -> None:
    provider_server.first_chunk_delay = 0.3
    raw = client.__wrapped__  # type: ignore[attr-defined]
    expected = list(raw.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert len(chunks) == len(expected)
    assert [type(c) for c in chunks] == [type(c) for c in expected]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello"
    (record,) = spans
    assert record["is_streaming"] is True
    assert view(record).output == "Hello"
    assert (view(record).prompt_tokens, view(record).completion_tokens) == (9, 2)
    assert 300 <= view(record).time_to_first_token_ms <= view(record).duration_ms
    sent = provider_server.requests[-1]["body"]
    assert sent["stream_options"] == {"include_usage": True}
    assert "stream_options" not in provider_server.requests[0]["body"]


def test_usage_chunk_stays_when_the_user_asked_for_it(
    client: openai.OpenAI, spans: CapturedSpans
) -> None:
    chunks = list(client.chat.completions.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None
    assert chunks[-1].choices == []
    assert view(spans[0]).total_tokens == 11


def test_stream_broken_off_ends_the_span(
    client: openai.OpenAI, spans: CapturedSpans
) -> None:
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    for chunk in stream:
        if chunk.choices[0].delta.content == "Hel":
            break
    (record,) = spans
    assert view(record).output == "Hel"
    assert record["attributes"]["cancelled"] is True


def test_stream_abandoned_unread_ends_when_collected(
    client: openai.OpenAI, spans: CapturedSpans
) -> None:
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    next(stream)
    assert spans == []
    del stream
    gc.collect()
    (record,) = spans
    assert record["attributes"]["cancelled"] is True


def test_stream_as_context_manager(client: openai.OpenAI, spans: CapturedSpans) -> None:
    with client.chat.completions.create(model="m", messages=MESSAGES, stream=True) as stream:
        first = next(stream)
        assert first.choices[0].delta.role == "assistant"
    (record,) = spans
    assert record["attributes"]["cancelled"] is True


def test_streamed_tool_calls(client: openai.OpenAI, spans: CapturedSpans) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    list(client.chat.completions.create(model="m", messages=MESSAGES, tools=tools, stream=True))
    client.chat.completions.create(model="m", messages=MESSAGES, tools=tools)
    streamed, plain = spans
    expected = {"text": "", "toolCalls": [{"id": "call_1", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city":"Paris"}'}}]}
    assert view(streamed).output == expected
    assert view(plain).output == {**expected, "text": None}


def test_async_client_and_the_span_covers_the_await(
    provider_server: ProviderServer, session: fallom.FallomSession, spans: CapturedSpans
) -> None:
    client = session.wrap_openai(openai.AsyncOpenAI(
        api_key="sk-test", base_url=provider_server.url + "/v1", max_retries=0))
    provider_server.first_chunk_delay = 0.2

    async def main() -> str:
        with fallom.span("request"):  # one trace: its spans are placed by one monotonic clock
            pending = client.chat.completions.create(model="m", messages=MESSAGES)
            with fallom.span("before the await"):  # not part of the call
                await asyncio.sleep(0)
            response = await pending
            stream = await client.chat.completions.create(model="m", messages=MESSAGES,
                                                          stream=True)
            text = "".join([c.choices[0].delta.content or "" async for c in stream])
        return response.choices[0].message.content + text

    assert asyncio.run(main()) == "HelloHello"
    before, plain, streamed, _ = spans
    assert plain["start_time"] >= before["end_time"]  # the call's span began at the await
    assert view(plain).output == "Hello"
    assert view(streamed).output == "Hello"
    assert 200 <= view(streamed).time_to_first_token_ms <= view(streamed).duration_ms
    assert view(streamed).total_tokens == 11


def test_errors_are_recorded_and_reraised_unchanged(
    client: openai.OpenAI, provider_server: ProviderServer, spans: CapturedSpans
) -> None:
    provider_server.error = (400, {"error": {"message": "bad model", "type": "invalid"}})
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="nope", messages=MESSAGES)
    assert caught.value.status_code == 400
    (record,) = spans
    assert record["status"] == "ERROR"
    assert "bad model" in record["error_message"]
    assert record["attributes"]["http.response.status_code"] == 400
    assert record["attributes"]["error.type"] == "BadRequestError"


def test_timeouts_are_recorded(provider_server: ProviderServer,
                               session: fallom.FallomSession, spans: CapturedSpans) -> None:
    provider_server.first_chunk_delay = 1.0
    client = session.wrap_openai(openai.OpenAI(
        api_key="k", base_url=provider_server.url + "/v1", max_retries=0, timeout=0.2))
    httpx = pytest.importorskip("httpx")
    # A timeout while reading the stream surfaces as httpx's own error on some SDK versions.
    with pytest.raises((openai.APITimeoutError, httpx.TimeoutException)) as caught:
        list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert spans[0]["status"] == "ERROR"
    assert spans[0]["attributes"]["error.type"] == type(caught.value).__name__


def test_other_endpoints(client: openai.OpenAI, spans: CapturedSpans) -> None:
    client.responses.create(model="gpt-4o", input="Say hello", instructions="Be brief")
    list(client.responses.create(model="gpt-4o", input="Say hello", stream=True))
    client.embeddings.create(model="text-embedding-3-small", input="hello")
    client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hello")
    list(client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say", stream=True))
    client.chat.completions.parse(model="gpt-4o", messages=MESSAGES)
    names = [r["name"] for r in spans]
    assert names == ["responses.create", "responses.create", "embeddings.create",
                     "completions.create", "completions.create", "chat.completions.create"]
    responses, responses_stream, embeddings, completion, completion_stream, parsed = spans
    assert view(responses).input == {"instructions": "Be brief", "input": "Say hello"}
    assert view(responses).output == "Hello"
    assert view(responses).total_tokens == 11
    assert view(responses_stream).output == "Hello"
    assert view(responses_stream).total_tokens == 11
    assert embeddings["kind"] == "embedding"
    assert view(embeddings).output == {"model": "text-embedding-3-small", "embeddings": 1,
                                      "dimensions": 3}
    assert view(embeddings).prompt_tokens == 3
    assert view(completion).output == "Hello"
    assert view(completion_stream).output == "Hello"
    assert view(completion_stream).total_tokens == 11
    assert view(parsed).output == "Hello"


def test_with_options_and_with_raw_response_keep_working(
    client: openai.OpenAI, spans: CapturedSpans
) -> None:
    tuned = client.with_options(timeout=5.0)
    assert isinstance(tuned, openai.OpenAI)
    tuned.chat.completions.create(model="m", messages=MESSAGES)
    raw = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    assert raw.parse().choices[0].message.content == "Hello"
    assert [r["name"] for r in spans] == ["chat.completions.create"]


def test_capture_off_keeps_messages_in_process(provider_server: ProviderServer,
                                               session: fallom.FallomSession) -> None:
    from fallom.testing import capture_spans

    fallom.init(capture_content=False, openai_stream_usage=True)
    client = session.wrap_openai(openai.OpenAI(api_key="k", base_url=provider_server.url + "/v1"))
    with capture_spans() as spans:
        client.chat.completions.create(model="m", messages=MESSAGES)
        list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert all(not view(r).has_input and not view(r).has_output for r in spans)
    assert view(spans[1]).total_tokens == 11


def test_untraced_before_init(provider_server: ProviderServer,
                              session: fallom.FallomSession) -> None:
    client = session.wrap_openai(openai.OpenAI(api_key="k", base_url=provider_server.url + "/v1"))
    assert client.chat.completions.create(model="m", messages=MESSAGES).choices
    (request,) = provider_server.requests  # sent once: neither refused and retried nor doubled
    assert "stream_options" not in request["body"]


def test_stream_options_are_not_sent_where_they_may_be_refused(
        provider_server: ProviderServer, session: fallom.FallomSession) -> None:
    provider_server.reject_stream_options = True  # an OpenAI-compatible server (Databricks)
    fallom.init()
    client = session.wrap_openai(openai.OpenAI(api_key="k", base_url=provider_server.url + "/v1",
                                               max_retries=0))
    with capture_spans() as records:
        chunks = list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello"
    assert "stream_options" not in provider_server.requests[-1]["body"]
    (record,) = records
    assert record["status"] == "OK"
    assert view(record).output == "Hello"
    assert view(record).time_to_first_token_ms is not None


def test_where_stream_usage_is_known_to_be_accepted() -> None:
    from fallom.providers.openai import accepts_stream_usage

    fallom.init()

    def chat(client: object) -> object:
        return client.chat.completions  # type: ignore[attr-defined]

    assert accepts_stream_usage(chat(openai.OpenAI(api_key="k")))
    assert not accepts_stream_usage(chat(openai.OpenAI(api_key="k",
                                                       base_url="http://127.0.0.1:9/v1")))
    azure = "https://x.openai.azure.com"
    assert accepts_stream_usage(chat(openai.AzureOpenAI(
        api_key="k", api_version="2024-10-21", azure_endpoint=azure)))
    assert not accepts_stream_usage(chat(openai.AzureOpenAI(
        api_key="k", api_version="2024-06-01", azure_endpoint=azure)))
    fallom.init(openai_stream_usage=True)
    assert accepts_stream_usage(chat(openai.OpenAI(api_key="k", base_url="http://h/v1")))
    fallom.init(openai_stream_usage=False)
    assert not accepts_stream_usage(chat(openai.OpenAI(api_key="k")))
