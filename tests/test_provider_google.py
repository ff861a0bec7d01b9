"""The real google-genai SDK against a local server speaking its JSON and SSE formats."""

from __future__ import annotations

import asyncio

import pytest

import fallom
from fallom.testing import CapturedSpans, view

from ._provider_server import ProviderServer

genai = pytest.importorskip("google.genai")
types = pytest.importorskip("google.genai.types")


@pytest.fixture
def client(provider_server: ProviderServer) -> genai.Client:
    session = fallom.session(config_key="bot", session_id="s-g")
    raw = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=provider_server.url))
    return session.wrap_google_ai(raw)


def test_generate_content(client: genai.Client, spans: CapturedSpans) -> None:
    config = types.GenerateContentConfig(temperature=0.1, max_output_tokens=30)
    response = client.models.generate_content(model="gemini-2.0-flash", contents="Say hello",
                                              config=config)
    assert response.text == "Hello"
    assert isinstance(client, genai.Client)
    (record,) = spans
    assert record["name"] == "generateContent"
    assert record["session_id"] == "s-g"
    assert record["model"] == "gemini-2.0-flash-001"
    assert view(record).input == "Say hello"
    assert view(record).output == "Hello"
    assert (view(record).prompt_tokens, view(record).completion_tokens, view(record).total_tokens) == (
        9, 2, 11)
    attrs = record["attributes"]
    assert attrs["gen_ai.request.model"] == "gemini-2.0-flash"
    assert attrs["gen_ai.request.temperature"] == 0.1
    assert attrs["gen_ai.request.max_tokens"] == 30
    assert attrs["gen_ai.response.finish_reasons"] == ["STOP"]


def test_generate_content_stream(client: genai.Client, provider_server: ProviderServer,
                                 spans: CapturedSpans) -> None:
    provider_server.first_chunk_delay = 0.2
    chunks = list(client.models.generate_content_stream(model="gemini", contents="hi"))
    assert "".join(c.text for c in chunks) == "Hello"
    assert len(chunks) == 2
    (record,) = spans
    assert view(record).output == "Hello"
    assert view(record).total_tokens == 11
    assert 200 <= view(record).time_to_first_token_ms <= view(record).duration_ms


def test_aio(client: genai.Client, spans: CapturedSpans) -> None:
    async def main() -> str:
        response = await client.aio.models.generate_content(model="gemini", contents="hi")
        stream = await client.aio.models.generate_content_stream(model="gemini", contents="hi")
        text = "".join([c.text async for c in stream])
        return response.text + text

    assert asyncio.run(main()) == "HelloHello"
    assert [r["name"] for r in spans] == ["generateContent",
                                          "generateContent"]
    assert [view(r).total_tokens for r in spans] == [11, 11]


def test_errors(client: genai.Client, provider_server: ProviderServer,
                spans: CapturedSpans) -> None:
    provider_server.error = (400, {"error": {"code": 400, "message": "bad contents",
                                             "status": "INVALID_ARGUMENT"}})
    with pytest.raises(genai.errors.ClientError):
        client.models.generate_content(model="gemini", contents="hi")
    assert spans[0]["status"] == "ERROR"


def test_google_generativeai_model(provider_server: ProviderServer, spans: CapturedSpans) -> None:
    legacy = pytest.importorskip("google.generativeai")
    legacy.configure(api_key="k", transport="rest",
                     client_options={"api_endpoint": provider_server.url})
    session = fallom.session(config_key="bot", session_id="s-legacy")
    model = session.wrap_google_ai(legacy.GenerativeModel("gemini-1.5-flash"))
    assert isinstance(model, legacy.GenerativeModel)
    assert model.generate_content("hi").text == "Hello"
    provider_server.first_chunk_delay = 0.2
    chunks = list(model.generate_content("hi", stream=True))
    assert "".join(c.text for c in chunks) == "Hello"
    plain, streamed = spans
    assert plain["name"] == "generateContent"
    assert view(plain).input == "hi"
    assert plain["attributes"]["gen_ai.request.model"] == "gemini-1.5-flash"
    assert (view(plain).output, view(plain).total_tokens) == ("Hello", 11)
    assert (view(streamed).output, view(streamed).total_tokens) == ("Hello", 11)
    assert 200 <= view(streamed).time_to_first_token_ms <= view(streamed).duration_ms
