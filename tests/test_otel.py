"""OpenTelemetry interop with the real SDK: spans in, OTLP out, one shared context."""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest

import fallom
from fallom.testing import capture_spans, view

from ._traces_server import TracesServer

otel_sdk = pytest.importorskip("opentelemetry.sdk.trace")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.trace import Status, StatusCode  # noqa: E402

from ._otlp_receiver import OtlpReceiver  # noqa: E402

MESSAGES = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    yield server
    server.close()


def tracer_with(exporter: Any) -> Any:
    provider = otel_sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("agent-framework")


def test_genai_spans_become_fallom_records() -> None:
    fallom.init()
    session = fallom.session(config_key="agents", session_id="s-otel", customer_id="u-1")
    tracer = tracer_with(fallom.FallomExporter(session=session.get_context()))
    with capture_spans() as spans:
        with tracer.start_as_current_span("agent run") as root:
            with tracer.start_as_current_span("chat gpt-4o") as call:
                call.set_attributes({
                    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024",
                    "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 5,
                    "gen_ai.input.messages": json.dumps(MESSAGES),
                    "gen_ai.output.messages": json.dumps([{"role": "assistant",
                                                           "content": "Hello"}]),
                    "gen_ai.response.time_to_first_token_ms": 42.0,
                    "gen_ai.request.temperature": 0.2})
    call_record, root_record = spans
    context = root.get_span_context()
    assert root_record["trace_id"] == f"{context.trace_id:032x}"
    assert call_record["parent_span_id"] == f"{context.span_id:016x}"
    assert root_record["kind"] == "span"
    assert (call_record["kind"], call_record["model"], view(call_record).prompt_tokens,
            view(call_record).completion_tokens, view(call_record).total_tokens) == (
        "llm", "gpt-4o-2024", 12, 5, 17)
    assert view(call_record).input == MESSAGES
    assert view(call_record).output == [{"role": "assistant", "content": "Hello"}]
    assert view(call_record).time_to_first_token_ms == 42.0
    assert (call_record["session_id"], call_record["config_key"],
            call_record["customer_id"]) == ("s-otel", "agents", "u-1")
    assert call_record["attributes"]["gen_ai.request.temperature"] == 0.2
    assert "gen_ai.input.messages" not in call_record["attributes"]


def test_older_names_openllmetry_and_errors() -> None:
    fallom.init()
    tracer = tracer_with(fallom.FallomExporter())
    with capture_spans() as spans, fallom.session(config_key="c", session_id="ambient"):
        with tracer.start_as_current_span("openai.chat") as span:
            span.set_attributes({
                "gen_ai.system": "openai", "llm.request.model": "gpt-3.5",
                "gen_ai.usage.prompt_tokens": 7, "gen_ai.usage.completion_tokens": 3,
                "llm.usage.total_tokens": 10, "gen_ai.prompt.0.role": "user",
                "gen_ai.prompt.0.content": "hi", "gen_ai.completion.0.content": "yo"})
            span.record_exception(KeyError("missing thing"))
            span.set_status(Status(StatusCode.ERROR, "boom"))
    (record,) = spans
    assert (record["model"], view(record).prompt_tokens, view(record).total_tokens) == (
        "gpt-3.5", 7, 10)
    assert view(record).input == [{"role": "user", "content": "hi"}]
    assert view(record).output == [{"content": "yo"}]
    assert record["attributes"]["gen_ai.provider.name"] == "openai"
    assert record["status"] == "ERROR"
    assert record["error_message"] == "KeyError: 'missing thing'"
    assert record["session_id"] == "ambient"


def test_privacy_mode_keeps_otel_content_in_process() -> None:
    fallom.init(capture_content=False)
    tracer = tracer_with(fallom.FallomExporter())
    with capture_spans() as spans, tracer.start_as_current_span("chat") as span:
        span.set_attributes({"gen_ai.system": "openai", "gen_ai.prompt.0.content": "secret-p",
                             "gen_ai.input.messages": "secret-m", "input.value": "secret-v"})
        span.record_exception(ValueError("secret-e"))
        span.set_status(Status(StatusCode.ERROR, "secret-s"))
    text = json.dumps(list(spans))
    assert "secret" not in text
    assert spans[0]["error_message"] == "ValueError"


def test_exported_spans_reach_fallom_over_http(traces_server: TracesServer) -> None:
    fallom.init(api_key="k", traces_url=traces_server.url)
    tracer = tracer_with(fallom.FallomExporter())
    with tracer.start_as_current_span("from-otel") as span:
        span.set_attribute("gen_ai.request.model", "m")
    assert fallom.flush(5)
    assert [r["name"] for r in traces_server.records] == ["from-otel"]


def test_otlp_out_with_genai_attributes(receiver: OtlpReceiver) -> None:
    from opentelemetry import trace

    global_provider = trace.get_tracer_provider()
    fallom.init(otlp_endpoint=receiver.url + "/v1/traces", otlp_headers={"x-team": "ml"})
    assert trace.get_tracer_provider() is global_provider  # never replaced

    @fallom.trace_llm(model="gpt-4o-mini", provider="openai")
    def ask(messages: list) -> str:
        fallom.current_span().record_usage(prompt_tokens=9, completion_tokens=2)
        return "Hello"

    with fallom.session(config_key="bot", session_id="s-7", customer_id="u-3"):
        with fallom.span("turn"):
            ask(MESSAGES)
    assert fallom.flush(5)
    assert receiver.wait_for(2)
    call, turn = receiver.spans
    attrs = call["attributes"]
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (9, 2)
    assert attrs["gen_ai.conversation.id"] == "s-7"
    assert (attrs["fallom.config_key"], attrs["fallom.customer_id"]) == ("bot", "u-3")
    assert json.loads(attrs["gen_ai.input.messages"]) == {"messages": MESSAGES}
    assert attrs["gen_ai.output.messages"] == "Hello"
    assert call["parent_span_id"] == turn["span_id"]
    assert call["trace_id"] == turn["trace_id"]
    assert call["end"] > call["start"]
    assert call["scope"] == "fallom"
    assert receiver.headers[0]["x-team"] == "ml"


def test_otlp_out_privacy_prompts_and_no_echo(receiver: OtlpReceiver) -> None:
    fallom.init(otlp_endpoint=receiver.url + "/v1/traces", capture_content=False)

    @fallom.trace_llm
    def ask(question: str) -> str:
        raise ValueError("secret failure")

    with pytest.raises(ValueError):
        ask("secret question")
    tracer = tracer_with(fallom.FallomExporter())
    with tracer.start_as_current_span("came-in-through-otel"):
        pass
    assert fallom.flush(5)
    assert receiver.wait_for(1)
    (span,) = receiver.spans  # the FallomExporter span is not sent back out
    assert "secret" not in json.dumps(span)
    assert span["status"] == 2  # STATUS_CODE_ERROR
    assert span["message"] == "ValueError"


def test_otlp_endpoint_from_the_environment(receiver: OtlpReceiver,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20abc,x-a=1")
    fallom.init()
    with fallom.span("env"):
        pass
    assert fallom.flush(5)
    assert receiver.wait_for(1)
    assert receiver.headers[0]["authorization"] == "Bearer abc"


def test_shared_context_both_ways() -> None:
    fallom.init(otel_context=True)
    exported: list = []

    class Keep:
        def export(self, spans: Any) -> Any:
            from opentelemetry.sdk.trace.export import SpanExportResult

            exported.extend(spans)
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

    tracer = tracer_with(Keep())
    with capture_spans() as spans:
        with tracer.start_as_current_span("otel-root") as otel_root:
            with fallom.span("fallom-child") as fallom_child:
                with tracer.start_as_current_span("otel-grandchild") as otel_grandchild:
                    with fallom.span("fallom-leaf"):
                        pass
    leaf, child = spans
    root_ctx = otel_root.get_span_context()
    assert child["trace_id"] == f"{root_ctx.trace_id:032x}"
    assert child["parent_span_id"] == f"{root_ctx.span_id:016x}"
    grandchild = otel_grandchild
    assert grandchild.parent.span_id == int(fallom_child.span_id, 16)
    assert grandchild.get_span_context().trace_id == root_ctx.trace_id
    assert leaf["parent_span_id"] == f"{grandchild.get_span_context().span_id:016x}"
    fallom.init(otel_context=False)
    with capture_spans() as alone, tracer.start_as_current_span("otel"):
        with fallom.span("independent"):
            pass
    assert "parent_span_id" not in alone[0]


CONTENT_ATTRIBUTES = {
    # GenAI semantic conventions, current and older names
    "gen_ai.input.messages": "[{\"role\":\"user\",\"parts\":[{\"content\":\"SECRET1\"}]}]",
    "gen_ai.output.messages": "SECRET2", "gen_ai.system_instructions": "SECRET3",
    "gen_ai.tool.call.arguments": "{\"q\":\"SECRET4\"}", "gen_ai.tool.call.result": "SECRET5",
    "gen_ai.prompt": "SECRET6", "gen_ai.completion": "SECRET7",
    "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "SECRET8",
    "gen_ai.completion.0.content": "SECRET9", "gen_ai.completion.0.tool_calls.0.arguments":
        "SECRET10",
    # OpenLLMetry / Traceloop
    "traceloop.entity.input": "SECRET11", "traceloop.entity.output": "SECRET12",
    "llm.prompts": "SECRET13", "llm.completions": "SECRET14",
    # OpenInference
    "input.value": "SECRET15", "output.value": "SECRET16",
    "llm.input_messages.0.message.content": "SECRET17",
    "llm.output_messages.0.message.content": "SECRET18",
    "llm.input_messages.0.message.tool_calls.0.tool_call.function.arguments": "SECRET19",
    "retrieval.documents.0.document.content": "SECRET20",
}


def test_no_content_attribute_of_any_convention_leaves_with_capture_off(
        traces_server: TracesServer) -> None:
    fallom.init(api_key="k", traces_url=traces_server.url, capture_content=False)
    tracer = tracer_with(fallom.FallomExporter())
    with capture_spans() as spans, tracer.start_as_current_span("agent-step") as span:
        span.set_attributes({"gen_ai.system": "openai", "gen_ai.request.model": "m",
                             "gen_ai.usage.input_tokens": 3, **CONTENT_ATTRIBUTES})
    assert fallom.flush(5.0)
    for records in (list(spans), traces_server.records):
        text = json.dumps(records)
        assert "SECRET" not in text
        assert view(records[0]).prompt_tokens == 3  # usage is not content
        assert records[0]["attributes"]["gen_ai.request.model"] == "m"


def test_with_capture_on_the_content_arrives(traces_server: TracesServer) -> None:
    fallom.init(api_key="k", traces_url=traces_server.url)
    tracer = tracer_with(fallom.FallomExporter())
    with tracer.start_as_current_span("agent-step") as span:
        span.set_attributes({"gen_ai.system": "openai", **CONTENT_ATTRIBUTES})
    assert fallom.flush(5.0)
    text = json.dumps(traces_server.records)
    assert all(f"SECRET{i}\\" in text or f"SECRET{i}" in text for i in range(1, 21))


def test_fallom_own_requests_are_never_traced(traces_server: TracesServer) -> None:
    instrumentation = pytest.importorskip("opentelemetry.instrumentation.requests")
    provider = otel_sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(fallom.FallomExporter()))
    instrumentor = instrumentation.RequestsInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        fallom.init(api_key="k", traces_url=traces_server.url, configs_url=traces_server.url,
                    prompts_url=traces_server.url)
        with provider.get_tracer("app").start_as_current_span("app-work"):
            pass
        assert fallom.flush(5.0)
        assert fallom.flush(5.0)  # a span of fallom's own POST would be delivered by now
        assert [r["name"] for r in traces_server.records] == ["app-work"]
    finally:
        instrumentor.uninstrument()


# Content a deny-list of names missed (issue 24, point 8), and a name no list could know.
UNLISTED_CONTENT = {
    "llm.request.functions.0.name": "get_SECRET_weather",  # OpenLLMetry
    "llm.request.functions.0.description": "SECRET description",
    "llm.request.functions.0.parameters": '{"SECRET": 1}',
    "reranker.query": "SECRET query",  # OpenInference
    "reranker.input_documents.0.document.content": "SECRET document",
    "reranker.output_documents.0.document.content": "SECRET document",
    "llm.function_call": '{"name": "SECRET"}',
    "final_result": "SECRET answer",  # Pydantic AI
    "tool_arguments": '{"city": "SECRET"}',
    "tool_response": "SECRET response",
    "pydantic_ai.all_messages": '[{"content": "SECRET"}]',
    "all_messages_events": '[{"content": "SECRET"}]',
    "my_framework.made_up_field": "SECRET",
}


@pytest.mark.parametrize("key", sorted(UNLISTED_CONTENT))
def test_privacy_mode_keeps_only_what_is_known_not_to_be_content(key: str) -> None:
    fallom.init(capture_content=False)
    tracer = tracer_with(fallom.FallomExporter())
    described = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "m",
                 "gen_ai.request.temperature": 0.2, "gen_ai.usage.input_tokens": 3,
                 "gen_ai.response.finish_reasons": ("stop",), "session.id": "s-1",
                 "server.address": "api.example.com"}
    with capture_spans() as spans, tracer.start_as_current_span("step") as span:
        span.set_attributes({**described, key: UNLISTED_CONTENT[key]})
    (record,) = spans
    assert key not in record["attributes"]
    assert "SECRET" not in json.dumps(record)
    kept = {k: v for k, v in record["attributes"].items() if k in described}
    assert kept == {**described, "gen_ai.response.finish_reasons": ["stop"]}
    assert (record["session_id"], view(record).prompt_tokens) == ("s-1", 3)


def test_one_bad_foreign_value_costs_that_span_alone() -> None:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    fallom.init()
    provider = otel_sdk.TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(fallom.FallomExporter(),
                                                   schedule_delay_millis=60_000))
    tracer = provider.get_tracer("app")
    bad = {2: {"gen_ai.usage.input_tokens": float("inf")},
           4: {"gen_ai.usage.input_tokens": "lots"},
           6: {"gen_ai.server.time_to_first_token": 1e308},
           8: {"gen_ai.input.messages": "[" * 50_000}}
    try:
        with capture_spans() as spans:
            for i in range(10):
                with tracer.start_as_current_span(f"call-{i}") as span:
                    span.set_attributes({"gen_ai.system": "openai", "gen_ai.usage.input_tokens": 5,
                                         "gen_ai.usage.output_tokens": 2, **bad.get(i, {})})
            assert provider.force_flush(10_000)  # the ten spans, in one export call
    finally:
        provider.shutdown()
    assert sorted(spans.names()) == [f"call-{i}" for i in range(10)]
    assert not any(fallom.stats()["dropped"].values())
    tokens = {r["name"]: (view(r).prompt_tokens, view(r).completion_tokens) for r in spans}
    assert tokens["call-2"] == tokens["call-4"] == (None, 2)  # the bad count, left out
    assert tokens["call-0"] == tokens["call-6"] == tokens["call-8"] == (5, 2)
    assert "time_to_first_token_ms" not in spans.by_name("call-6")
    json.dumps(list(spans), allow_nan=False)  # inf went out as text, as captured values do
