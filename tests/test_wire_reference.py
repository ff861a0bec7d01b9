"""Against a backend that takes only what the published Fallom SDKs send.

The server here refuses with 400 anything but one bare, plain-JSON v2
record per request (``check_reference_request``) and never advertises
batches, as the Fallom cloud is known to behave. Real provider SDK clients
talk to a local fake provider.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, Iterator, List

import pytest

import fallom
from fallom.testing import view

from ._provider_server import ProviderServer
from ._records import run_in_threads
from ._traces_server import TracesServer, check_reference_record, plain_body

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")
genai = pytest.importorskip("google.genai")

KEY = "ref-key-1"
MESSAGES = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def strict() -> Iterator[TracesServer]:
    server = TracesServer(ingest=None, strict=True)
    yield server
    server.close()


def start(server: TracesServer, **kwargs: Any) -> fallom.FallomSession:
    kwargs.setdefault("openai_stream_usage", True)  # the fake provider takes stream_options
    fallom.init(api_key=KEY, traces_url=server.url, **kwargs)
    return fallom.session(config_key="bot", session_id="s-ref", customer_id="u-1")


def delivered(server: TracesServer, count: int) -> List[Dict[str, Any]]:
    assert fallom.flush(10.0) is True
    assert server.refused == []
    assert len(server.records) == count
    # one request per record, several in flight: they arrive in any order
    return sorted(server.records, key=lambda r: r["start_time"])


def by_method(records: List[Dict[str, Any]]) -> Dict[str, List[Dict[str, Any]]]:
    found: Dict[str, List[Dict[str, Any]]] = {}
    for record in records:
        found.setdefault(record["attributes"]["fallom.method"], []).append(record)
    return found


def raw(record: Dict[str, Any], name: str) -> Any:
    return json.loads(record["attributes"][f"fallom.raw.{name}"])


def test_openai_calls_and_streams_in_the_reference_shapes(
        strict: TracesServer, provider_server: ProviderServer) -> None:
    session = start(strict)
    client = session.wrap_openai(openai.OpenAI(api_key="sk", base_url=provider_server.url + "/v1",
                                               max_retries=0))
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=tools)
    client.responses.create(model="gpt-4o", input="Say hello")
    client.embeddings.create(model="text-embedding-3-small", input="hi")
    client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say")
    records = by_method(delivered(strict, 6))
    plain, streamed, tooled = records["chat.completions.create"]
    for record in (plain, streamed, tooled):
        assert (record["config_key"], record["session_id"], record["customer_id"]) == (
            "bot", "s-ref", "u-1")
        assert record["kind"] == "llm"
        assert raw(record, "request") == {"messages": MESSAGES, "model": "gpt-4o-mini",
                                          **({"tools": tools} if record is tooled else {})}
        assert raw(record, "usage")["prompt_tokens"] == 9
        assert raw(record, "usage")["total_tokens"] == 11
        assert isinstance(record["duration_ms"], int)
    assert raw(plain, "response") == {"text": "Hello", "finishReason": "stop",
                                      "responseId": "chatcmpl-1",
                                      "model": "gpt-4o-mini-2024-07-18"}
    assert raw(streamed, "response")["text"] == "Hello"
    assert streamed["is_streaming"] is True
    assert isinstance(streamed["time_to_first_token_ms"], int)
    assert raw(streamed, "timings")["firstTokenTime"] == streamed["time_to_first_token_ms"]
    assert raw(tooled, "response")["toolCalls"][0]["function"]["name"] == "get_weather"
    (responses,) = records["responses.create"]
    assert raw(responses, "request") == {"input": "Say hello", "model": "gpt-4o"}
    assert raw(responses, "response")["text"] == "Hello"
    assert view(responses).total_tokens == 11
    assert view(records["embeddings.create"][0]).prompt_tokens == 3
    assert raw(records["completions.create"][0], "request") == {
        "prompt": "Say", "model": "gpt-3.5-turbo-instruct"}


def test_anthropic_and_google_in_the_reference_shapes(
        strict: TracesServer, provider_server: ProviderServer) -> None:
    session = start(strict)
    claude = session.wrap_anthropic(anthropic.Anthropic(api_key="k", base_url=provider_server.url,
                                                        max_retries=0))
    claude.messages.create(model="claude-x", max_tokens=5, messages=MESSAGES, system="Be brief")
    list(claude.messages.create(model="claude-x", max_tokens=5, messages=MESSAGES, stream=True))
    with claude.messages.stream(model="claude-x", max_tokens=5, messages=MESSAGES) as stream:
        "".join(stream.text_stream)
    gemini = session.wrap_google_ai(genai.Client(
        api_key="k", http_options={"base_url": provider_server.url}))
    gemini.models.generate_content(model="gemini-2.0-flash", contents="Say hello")
    records = by_method(delivered(strict, 4))
    plain, streamed, managed = records["messages.create"]
    assert raw(plain, "request") == {"messages": MESSAGES, "system": "Be brief",
                                     "model": "claude-x"}
    for record in (plain, streamed, managed):
        assert raw(record, "usage")["input_tokens"] == 9
        assert raw(record, "response")["text"] == "Hello"
        assert view(record).total_tokens == 11
    assert raw(plain, "response")["finishReason"] == "end_turn"
    assert streamed["is_streaming"] is True
    (google,) = records["generateContent"]
    assert raw(google, "request") == {"contents": "Say hello", "model": "gemini-2.0-flash"}
    assert raw(google, "response")["text"] == "Hello"
    assert raw(google, "usage")["prompt_token_count"] == 9
    assert view(google).total_tokens == 11


def test_litellm_and_trace_llm_spans(strict: TracesServer,
                                     provider_server: ProviderServer) -> None:
    litellm = pytest.importorskip("litellm")
    session = start(strict)
    wrapped = session.wrap_litellm(litellm)
    wrapped.completion(model="openai/gpt-4o-mini", messages=MESSAGES,
                       api_base=provider_server.url + "/v1", api_key="sk")

    @fallom.trace_llm(model="my-model")
    def helper(question: str) -> str:
        fallom.current_span().record_usage(prompt_tokens=3, completion_tokens=4)
        return "an answer"

    with session:
        helper("a question")
    with fallom.span("outside-any-session"):
        pass
    records = delivered(strict, 3)
    chat = by_method(records)["chat.completions.create"][0]
    assert raw(chat, "request")["messages"] == MESSAGES
    assert view(chat).total_tokens == 11
    mine = next(r for r in records if r["name"] == "test_litellm_and_trace_llm_spans.helper")
    assert raw(mine, "request") == {"input": {"question": "a question"}, "model": "my-model"}
    assert raw(mine, "response") == {"output": "an answer", "text": "an answer"}
    assert raw(mine, "usage") == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    alone = next(r for r in records if r["name"] == "outside-any-session")
    assert alone["config_key"] == "default"
    assert alone["session_id"] == alone["trace_id"]


def test_errors_and_privacy_mode(strict: TracesServer, provider_server: ProviderServer) -> None:
    session = start(strict, capture_content=False, config_key="my-app")
    client = session.wrap_openai(openai.OpenAI(api_key="sk", base_url=provider_server.url + "/v1",
                                               max_retries=0))
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "SECRET"}])
    provider_server.error = (400, {"error": {"message": "SECRET bad model"}})
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="m", messages=MESSAGES)

    @fallom.trace_llm
    def leaky(text: str) -> str:
        raise ValueError(f"SECRET {text}")

    with pytest.raises(ValueError):
        leaky("SECRET")
    records = delivered(strict, 3)
    assert "SECRET" not in json.dumps(records)
    ok, failed, mine = records
    assert "fallom.raw.request" not in ok["attributes"]
    assert raw(ok, "usage")["total_tokens"] == 11  # usage is not content
    assert (failed["status"], failed["error_message"]) == ("ERROR", "BadRequestError")
    assert (mine["status"], mine["error_message"], mine["config_key"]) == (
        "ERROR", "ValueError", "my-app")


def test_600_spans_from_4_threads_against_a_slow_backend(strict: TracesServer) -> None:
    strict.default = ("delay", 0.02)  # 20 ms per request
    start(strict)

    @fallom.trace_llm
    def call(i: int) -> int:
        return i

    def work(t: int) -> None:
        for i in range(150):
            call(t * 150 + i)

    run_in_threads(work, 4)
    assert fallom.flush(60.0) is True  # about 1 s with 16 in flight; 12 s one at a time
    assert sorted(view(r).input["i"] for r in strict.records) == list(range(600))
    assert len(strict.requests) == 600  # one record each, none sent twice
    assert strict.refused == []
    # several at once (a request held 20 ms has company), never past export_concurrency
    assert 2 <= strict.peak_in_flight <= 16


def test_the_reference_check_refuses_what_the_cloud_would(strict: TracesServer) -> None:
    start(strict, batch=True, compress=True)
    with fallom.span("x"):
        pass
    assert fallom.flush(5.0) is False  # a gzip batch is refused whole
    assert strict.refused == ["Content-Encoding 'gzip'"]
    assert check_reference_record({"config_key": "k"}) is not None


def test_a_value_no_encoder_takes_cuts_only_its_record(
        traces_server: TracesServer, caplog: pytest.LogCaptureFixture) -> None:
    fallom.init(api_key=KEY, traces_url=traces_server.url, batch=True)
    huge = 10 ** 5000  # beyond json's 4,300 digits (and orjson's 64 bits)
    for i in range(5):
        with fallom.span(f"s{i}") as span:
            if i == 2:
                span.set_attribute("big", huge)
                span.set_attribute("name\ud800", "lone \udc00 surrogate")
    with caplog.at_level(logging.DEBUG, logger="fallom"):
        assert fallom.flush(5.0) is True
    assert sorted(r["name"] for r in traces_server.records) == [f"s{i}" for i in range(5)]
    cut = next(r for r in traces_server.records if r["name"] == "s2")
    assert "cut by fallom" in json.dumps(cut)
    assert fallom.stats()["cut"] == 1
    assert sum(fallom.stats()["dropped"].values()) == 0
    assert "surrogate" not in caplog.text


def test_a_lone_surrogate_is_repaired_so_no_backend_refuses_the_record(
        traces_server: TracesServer) -> None:
    fallom.init(api_key=KEY, traces_url=traces_server.url, batch=False)

    @fallom.trace_llm
    def ask(q: str) -> str:
        return "ok"

    with fallom.span("outer \ud800"):
        ask("lone \udc00 here")
    assert fallom.flush(5.0) is True
    bodies = [plain_body(r) for r in traces_server.requests]
    for body in bodies:
        body.decode("utf-8")  # valid UTF-8: no raw surrogate on the wire
        assert b"\\ud800" not in body  # and no escaped one a backend would refuse
    by_name = {r["name"].rsplit(".")[-1]: r for r in traces_server.records}
    assert set(by_name) == {"outer \ufffd", "ask"}  # U+FFFD, as a decoder writes it
    assert view(by_name["ask"]).input == {"q": "lone \ufffd here"}
    assert fallom.stats()["cut"] == 0


def test_an_export_warning_never_quotes_content(
        traces_server: TracesServer, caplog: pytest.LogCaptureFixture) -> None:
    traces_server.default = ("status", 400)
    fallom.init(api_key=KEY, traces_url=traces_server.url)

    @fallom.trace_llm
    def ask(q: str) -> str:
        return "CANARY-ANSWER"

    with caplog.at_level(logging.DEBUG, logger="fallom"):
        ask("CANARY-QUESTION")
        assert fallom.flush(5.0) is False
    assert "answered 400" in caplog.text
    assert "CANARY" not in caplog.text


@pytest.mark.parametrize("url", ["HTTP://traces.example.com", "Http://traces.example.com"])
def test_insecure_http_is_refused_whatever_the_case(url: str) -> None:
    with pytest.raises(ValueError, match="traces_url"):
        fallom.init(api_key=KEY, traces_url=url)


@pytest.mark.parametrize("key", ["abc def", "abc\n", "\tabc", "ab\x00c", "ab\x7fc", "k\u00e9y"])
def test_an_api_key_with_whitespace_or_control_characters_is_refused(key: str) -> None:
    with pytest.raises(ValueError, match="api_key") as caught:
        fallom.init(api_key=key)
    assert key not in str(caught.value)


@pytest.mark.parametrize("value", ["", "  ", 5])
def test_config_key_must_be_a_non_empty_string(value: Any) -> None:
    with pytest.raises(ValueError, match="config_key"):
        fallom.init(config_key=value)
