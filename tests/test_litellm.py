"""The real litellm SDK against the local OpenAI-format server."""

from __future__ import annotations

import asyncio
from typing import Iterator

import pytest

import fallom
from fallom.testing import CapturedSpans, capture_spans, view

from ._provider_server import ProviderServer

litellm = pytest.importorskip("litellm")

MESSAGES = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def spans() -> Iterator[CapturedSpans]:
    """As the suite's, with the usage chunk asked of every server (this one takes it)."""
    fallom.init(openai_stream_usage=True)
    with capture_spans() as records:
        yield records


@pytest.fixture
def wrapped() -> object:
    return fallom.session(config_key="ll", session_id="s-ll").wrap_litellm(litellm)


def test_completion_with_provider_tokens_and_cost(
    wrapped: object, provider_server: ProviderServer, spans: CapturedSpans
) -> None:
    response = wrapped.completion(model="openai/gpt-4o-mini", messages=MESSAGES,  # type: ignore[attr-defined]
                                  api_base=provider_server.url + "/v1", api_key="k")
    assert response.choices[0].message.content == "Hello"
    (record,) = spans
    assert record["name"] == "chat.completions.create"
    assert record["session_id"] == "s-ll"
    assert (view(record).prompt_tokens, view(record).completion_tokens, view(record).total_tokens) == (
        9, 2, 11)
    assert record["model"] == "gpt-4o-mini-2024-07-18"
    assert record["attributes"]["gen_ai.provider.name"] == "openai"
    assert record["attributes"]["gen_ai.request.model"] == "openai/gpt-4o-mini"
    assert record["attributes"]["gen_ai.usage.cost"] > 0
    assert view(record).output == "Hello"


def test_streaming_and_async(wrapped: object, provider_server: ProviderServer,
                             spans: CapturedSpans) -> None:
    warm_up = litellm.completion(model="openai/gpt-4o-mini", messages=MESSAGES, stream=True,
                                 api_base=provider_server.url + "/v1", api_key="k")
    list(warm_up)  # litellm's first stream pays one-time set-up costs
    provider_server.first_chunk_delay = 0.2
    stream = wrapped.completion(model="openai/gpt-4o-mini", messages=MESSAGES, stream=True,  # type: ignore[attr-defined]
                                api_base=provider_server.url + "/v1", api_key="k")
    text = "".join(c.choices[0].delta.content or "" for c in stream)
    assert text == "Hello"

    async def main() -> str:
        response = await wrapped.acompletion(  # type: ignore[attr-defined]
            model="openai/gpt-4o-mini", messages=MESSAGES,
            api_base=provider_server.url + "/v1", api_key="k")
        return str(response.choices[0].message.content)

    assert asyncio.run(main()) == "Hello"
    streamed, awaited = spans
    assert streamed["is_streaming"] is True
    assert view(streamed).output == "Hello"
    assert 200 <= view(streamed).time_to_first_token_ms <= view(streamed).duration_ms
    assert view(streamed).total_tokens == 11
    assert awaited["name"] == "chat.completions.create"
    assert view(awaited).total_tokens == 11


def test_errors_are_recorded(wrapped: object, provider_server: ProviderServer,
                             spans: CapturedSpans) -> None:
    provider_server.error = (400, {"error": {"message": "bad request", "type": "invalid"}})
    with pytest.raises(litellm.BadRequestError):
        wrapped.completion(model="openai/gpt-4o-mini", messages=MESSAGES, num_retries=0,  # type: ignore[attr-defined]
                           api_base=provider_server.url + "/v1", api_key="k")
    assert spans[0]["status"] == "ERROR"


@pytest.fixture
def default_spans() -> Iterator[CapturedSpans]:
    """A plain ``init()``: no setting asks for stream usage."""
    fallom.init()
    with capture_spans() as records:
        yield records


def chunks(stream: object) -> list:
    return [(c.choices[0].delta.content if c.choices else None, getattr(c, "usage", None))
            for c in stream]  # type: ignore[attr-defined]


ANTHROPIC = "anthropic/claude-3-5-haiku-20241022"


def test_a_stream_through_any_provider_has_its_usage(provider_server: ProviderServer,
                                                     default_spans: CapturedSpans) -> None:
    untraced = chunks(litellm.completion(model=ANTHROPIC, messages=MESSAGES, stream=True,
                                         api_base=provider_server.url, api_key="k"))
    traced = fallom.session(config_key="ll", session_id="s").trace_model(litellm)
    seen = chunks(traced.completion(model=ANTHROPIC, messages=MESSAGES, stream=True,
                                    api_base=provider_server.url, api_key="k"))
    assert seen == untraced  # the usage chunk fallom asked for is not shown
    (record,) = default_spans
    assert record["is_streaming"] is True
    assert view(record).output == "Hello"
    assert (view(record).prompt_tokens, view(record).completion_tokens,
            view(record).total_tokens) == (9, 2, 11)


def test_the_users_own_stream_options_are_kept(provider_server: ProviderServer,
                                               default_spans: CapturedSpans) -> None:
    traced = fallom.session(config_key="ll", session_id="s").wrap_litellm(litellm)
    seen = chunks(traced.completion(model=ANTHROPIC, messages=MESSAGES, stream=True,  # type: ignore[attr-defined]
                                    stream_options={"include_usage": True},
                                    api_base=provider_server.url, api_key="k"))
    assert seen[-1][1].total_tokens == 11  # asked for, so shown
    assert view(default_spans[0]).total_tokens == 11


def test_openai_stream_usage_false_asks_no_server(provider_server: ProviderServer) -> None:
    provider_server.reject_stream_options = True  # an OpenAI-compatible server that refuses it
    fallom.init(openai_stream_usage=False)
    traced = fallom.session(config_key="ll", session_id="s").wrap_litellm(litellm)
    with capture_spans() as spans:
        seen = chunks(traced.completion(model="openai/gpt-4o-mini", messages=MESSAGES,  # type: ignore[attr-defined]
                                        stream=True, api_base=provider_server.url + "/v1",
                                        api_key="k"))
    assert "".join(text or "" for text, _ in seen) == "Hello"
    assert spans[0]["status"] == "OK"
