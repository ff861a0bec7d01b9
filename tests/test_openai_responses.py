"""The OpenAI Responses API through a wrapped client: sync, async, streaming, as 0.2.7
covers it; the real openai SDK against a local server speaking its JSON and SSE."""

from __future__ import annotations

import asyncio
from typing import Any, Iterator, List

import pytest

import fallom
from fallom.testing import CapturedSpans, capture_spans, view

from ._provider_server import ProviderServer

openai = pytest.importorskip("openai")


@pytest.fixture
def spans() -> Iterator[CapturedSpans]:
    with capture_spans() as records:
        yield records


def _check(record: Any, session_id: str) -> None:
    assert record["name"] == "responses.create"
    assert record["attributes"]["gen_ai.provider.name"] == "openai"
    assert record["session_id"] == session_id
    assert view(record).output == "Hello"
    assert view(record).total_tokens == 11
    assert view(record).input == {"instructions": "Be brief", "input": "Say hello"}


def test_async_responses_plain_and_streamed(provider_server: ProviderServer,
                                           spans: CapturedSpans) -> None:
    session = fallom.session("bot", "s-async")
    client = session.wrap_openai(openai.AsyncOpenAI(
        api_key="sk-test", base_url=provider_server.url + "/v1", max_retries=0))

    async def main() -> List[Any]:
        plain = await client.responses.create(model="gpt-4o", input="Say hello",
                                              instructions="Be brief")
        stream = await client.responses.create(model="gpt-4o", input="Say hello",
                                               instructions="Be brief", stream=True)
        events = [event async for event in stream]
        return [plain, events]

    plain, events = asyncio.run(main())
    assert plain.output_text == "Hello"  # what the caller gets is untouched
    assert any(getattr(e, "type", "") == "response.completed" for e in events)
    assert len(spans) == 2
    for record in spans:
        _check(record, "s-async")
    assert view(spans[1]).time_to_first_token_ms is not None  # a stream's time to first token


def test_sync_streamed_responses_in_a_legacy_session(provider_server: ProviderServer,
                                                    spans: CapturedSpans) -> None:
    client = fallom.trace.wrap_openai(openai.OpenAI(
        api_key="sk-test", base_url=provider_server.url + "/v1", max_retries=0))
    fallom.trace.set_session("bot", "s-legacy")
    try:
        list(client.responses.create(model="gpt-4o", input="Say hello",
                                     instructions="Be brief", stream=True))
    finally:
        fallom.trace.clear_session()
    _check(spans[0], "s-legacy")
