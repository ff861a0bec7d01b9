"""``fallom.trace``: 0.2.7's tracing module, each function on this SDK's own machinery.

The names, signatures, types and ``TraceData`` records are checked against the
published 0.2.7 itself (its interpreter, ``reference_python``); delivery goes to
real local servers; the legacy session is checked per thread and per asyncio task.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import subprocess
import threading
from typing import Any, Dict, Iterator, List

import pytest

import fallom
from fallom import trace
from fallom.protocol._names import PROVIDER
from fallom.testing import CapturedSpans, capture_spans, view

from ._config_server import ConfigServer
from ._provider_server import ProviderServer
from ._traces_server import TracesServer
from .reference.make_fixtures import reference_python

KEY = "trace-key-1"
MESSAGES = [{"role": "user", "content": "Say hello"}]

# Where a 0.2.7 call would not be taken as it is: each a decision of the SDK's own API.
KNOWN_SIGNATURE_DIFFERENCES: Dict[str, str] = {}


def _trace_data(**changes: Any) -> trace.TraceData:
    """A record as 0.2.7's OpenAI wrapper builds one, with ``changes``."""
    usage = {"prompt_tokens": 9, "total_tokens": 11}
    built = trace.TraceData(
        config_key="bot", session_id="s-1", trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id="b7ad6b7169203331", name="chat.completions.create",
        start_time="2025-01-01T00:00:00+00:00", end_time="2025-01-01T00:00:01.250000+00:00",
        duration_ms=1250, status="OK", customer_id="u-1", kind="llm", model="gpt-4o",
        metadata={"plan": "pro"}, tags=["beta"],
        attributes={"fallom.sdk_version": "2", "fallom.method": "chat.completions.create",
                    "fallom.raw.request": json.dumps({"messages": MESSAGES}),
                    "fallom.raw.response": json.dumps({"text": "Hello"}),
                    "fallom.raw.usage": json.dumps(usage)})
    return dataclasses.replace(built, **changes)


@pytest.fixture(autouse=True)
def _no_legacy_session_left() -> Iterator[None]:
    """set_session outlives a test in pytest's thread, as it outlives a call in a program."""
    yield
    trace.clear_session()


@pytest.fixture
def servers(config_server: ConfigServer, monkeypatch: pytest.MonkeyPatch) -> ConfigServer:
    """Configs and prompts from a local server: an init with a key fetches them."""
    monkeypatch.setenv("FALLOM_CONFIGS_URL", config_server.url)
    monkeypatch.setenv("FALLOM_PROMPTS_URL", config_server.url)
    return config_server


@pytest.fixture
def strict() -> Iterator[TracesServer]:
    """A backend taking only bare v2 records, as the Fallom cloud does."""
    server = TracesServer(ingest=None, strict=True)
    yield server
    server.close()


def _reference(code: str) -> Any:
    """What ``code`` prints as JSON, run by the published 0.2.7 (outside this checkout)."""
    done = subprocess.run([str(reference_python()), "-c", code], capture_output=True,
                          text=True, timeout=120, cwd="/")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# -- the surface, against 0.2.7 ------------------------------------------------------------
_SURFACE = """
import dataclasses, inspect, json
from fallom import trace
def params(f):
    return [(p.name, p.kind.name, repr(p.default) if p.default is not p.empty else None)
            for p in inspect.signature(f).parameters.values()]
out = {"all": sorted(trace.__all__), "signatures": {}, "fields": {}}
for name in trace.__all__:
    value = getattr(trace, name)
    if dataclasses.is_dataclass(value):
        out["fields"][name] = [(f.name, None if f.default is dataclasses.MISSING
                                else repr(f.default)) for f in dataclasses.fields(value)]
    elif inspect.isclass(value):
        out["signatures"][name] = params(value.__new__ if "__new__" in vars(value)
                                         else value.__init__)[1:]
    else:
        out["signatures"][name] = params(value)
print(json.dumps(out))
"""


def _takes_every_call_of(ours: List[Any], theirs: List[Any]) -> bool:
    """Every call 0.2.7's parameters take, ours take alike: same names in the same places,
    by position or keyword, 0.2.7's defaults kept; ours may add optional ones after."""
    if len(ours) < len(theirs):
        return False
    for (name, kind, default), (our_name, our_kind, our_default) in zip(theirs, ours):
        if (our_name, our_kind) != (name, kind) or (default is not None
                                                     and our_default != default):
            return False
    return all(default is not None for _, _, default in ours[len(theirs):])


def test_every_name_of_0_2_7_with_its_parameters_and_fields() -> None:
    theirs = _reference(_SURFACE)
    ours_code = _SURFACE.replace("from fallom import trace", "")
    scope: Dict[str, Any] = {"trace": trace, "print": lambda text: scope.update(out=text)}
    exec(ours_code, scope)  # the same walk, over this module
    ours = json.loads(scope["out"])
    assert ours["all"] == theirs["all"]
    differing = {name for name, params in theirs["signatures"].items()
                 if not _takes_every_call_of(ours["signatures"][name], params)}
    assert differing == set(KNOWN_SIGNATURE_DIFFERENCES)
    # SessionContext is this SDK's frozen one: the same fields, in the same order
    assert [f for f, _ in ours["fields"].pop("SessionContext")] == [
        f for f, _ in theirs["fields"].pop("SessionContext")]
    assert ours["fields"] == theirs["fields"]


def test_trace_data_to_dict_is_0_2_7s_record() -> None:
    full = _trace_data(parent_span_id="00f067aa0ba902b7", error_message="", is_streaming=False,
                       time_to_first_token_ms=0, prompt_key="greet", prompt_version=2,
                       prompt_ab_test_key="ab", prompt_variant_index=0)
    cases = [_trace_data(customer_id=None, kind=None, model=None, metadata=None, tags=None,
                         attributes=None), _trace_data(), full]
    code = ("import json\nfrom fallom.trace import TraceData\n"
            f"cases = json.loads({json.dumps(json.dumps([vars(c) for c in cases]))})\n"
            "print(json.dumps([list(TraceData(**c).to_dict().items()) for c in cases]))")
    assert [[list(pair) for pair in c.to_dict().items()] for c in cases] == _reference(code)


# -- init and the settings -----------------------------------------------------------------
def test_init_sets_what_it_is_given_and_the_getters_read_the_runtime(
        servers: ConfigServer, traces_server: TracesServer) -> None:
    assert (trace.is_initialized(), trace.get_api_key(), trace.get_base_url()) == (
        False, None, "https://traces.fallom.com")
    trace.init(KEY, traces_server.url + "/", False, True)
    assert (trace.is_initialized(), trace.get_api_key(), trace.get_base_url()) == (
        True, KEY, traces_server.url)
    assert (trace.should_capture_content(), trace.is_debug_mode()) == (False, True)
    trace.shutdown()
    assert trace.is_initialized() is False


def test_a_second_init_changes_only_what_it_is_given(servers: ConfigServer) -> None:
    fallom.init(api_key=KEY, sample_rate=0.5, capture_content=False)
    trace.init()  # 0.2.7 ignores a second init: here, nothing given, nothing changes
    settings = fallom.tracing._runtime.STATE.settings
    assert (settings.sample_rate, settings.capture_content, settings.api_key) == (0.5, False, KEY)
    trace.init(base_url="http://127.0.0.1:9")
    settings = fallom.tracing._runtime.STATE.settings
    assert (settings.traces_url, settings.sample_rate, settings.configs_url) == (
        "http://127.0.0.1:9", 0.5, servers.url)


def test_init_without_a_key_is_local_mode_not_an_error() -> None:
    trace.init()  # 0.2.7 raises ValueError here; this SDK records locally
    assert trace.is_initialized() is True
    assert trace.get_api_key() is None


def test_capture_content_false_in_the_environment_wins_over_the_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALLOM_CAPTURE_CONTENT", "false")
    trace.init()
    assert trace.should_capture_content() is False


# -- send_trace ----------------------------------------------------------------------------
def test_send_trace_sync_delivers_the_record_to_a_reference_backend(
        servers: ConfigServer, strict: TracesServer) -> None:
    trace.init(KEY, strict.url)
    record = _trace_data(parent_span_id="00f067aa0ba902b7")
    trace.send_trace_sync(record)
    assert strict.refused == []
    assert strict.records == [record.to_dict()]
    (request,) = strict.requests
    assert request["path"] == "/v1/traces"
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"


def test_send_trace_goes_where_spans_go_redacted_and_without_content_when_asked() -> None:
    def redact(record: Dict[str, Any]) -> Dict[str, Any]:
        return {**record, "metadata": {"plan": "[redacted]"}}

    fallom.init(capture_content=False, redact=redact)
    with capture_spans() as spans:
        trace.send_trace(_trace_data())
    (record,) = spans
    assert record["metadata"] == {"plan": "[redacted]"}
    assert set(record["attributes"]) == {"fallom.sdk_version", "fallom.method",
                                         "fallom.raw.usage"}
    assert view(record).total_tokens == 11


def test_send_trace_before_init_is_counted_dropped_and_never_raises(
        caplog: pytest.LogCaptureFixture) -> None:
    before = fallom.stats()["dropped"]["shutdown"]
    trace.send_trace(_trace_data())
    assert fallom.stats()["dropped"]["shutdown"] == before + 1
    fallom.init()
    with capture_spans() as spans, caplog.at_level(logging.WARNING, logger="fallom"):
        trace.send_trace({"name": "not a TraceData"})  # type: ignore[arg-type]
    assert list(spans) == []
    assert "expected a TraceData, got dict" in caplog.text


# -- the legacy session --------------------------------------------------------------------
@fallom.trace_llm
def ask(question: str) -> str:
    return f"answer to {question}"


def test_set_session_is_the_session_of_every_span_after_it(
        spans: CapturedSpans, provider_server: ProviderServer) -> None:
    openai = pytest.importorskip("openai")
    client = trace.wrap_openai(openai.OpenAI(api_key="sk", base_url=provider_server.url + "/v1",
                                             max_retries=0))
    trace.set_session("agent", "s-legacy", customer_id="u-9", metadata={"plan": "pro"},
                      tags=["beta"])
    assert trace.get_session() == {"config_key": "agent", "session_id": "s-legacy",
                                   "customer_id": "u-9", "metadata": {"plan": "pro"},
                                   "tags": ["beta"]}
    ask("q")
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with fallom.span("step"):
        pass
    trace.clear_session()
    assert trace.get_session() is None
    ask("after")
    *inside, after = spans
    assert [r["name"] for r in inside[::2]] == ["ask", "step"]
    assert inside[1]["attributes"][PROVIDER] == "openai"
    for record in inside:
        assert (record["config_key"], record["session_id"], record["customer_id"],
                record["metadata"], record["tags"]) == ("agent", "s-legacy", "u-9",
                                                        {"plan": "pro"}, ["beta"])
    assert after["session_id"] == after["trace_id"]  # no session: a session of its own


def test_get_session_leaves_out_what_is_not_set() -> None:
    trace.set_session("agent", "s-1", customer_id="", metadata={}, tags=[])
    assert trace.get_session() == {"config_key": "agent", "session_id": "s-1"}


def test_set_session_with_a_wrong_value_never_raises_and_leaves_no_session(
        caplog: pytest.LogCaptureFixture) -> None:
    trace.set_session("agent", "s-1")
    with caplog.at_level(logging.WARNING, logger="fallom"):
        trace.set_session("agent", None)  # type: ignore[arg-type]
    assert trace.get_session() is None
    assert "trace.set_session" in caplog.text


def test_the_legacy_session_is_per_thread(spans: CapturedSpans) -> None:
    trace.set_session("agent", "main")
    all_set = threading.Barrier(4)
    seen: Dict[int, Any] = {}

    def work(n: int) -> None:
        trace.set_session("agent", f"thread-{n}")
        all_set.wait(10)  # every thread has set its own before any reads
        seen[n] = trace.get_session()
        ask(str(n))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {n: s["session_id"] for n, s in seen.items()} == {n: f"thread-{n}" for n in range(4)}
    assert sorted(r["session_id"] for r in spans) == [f"thread-{n}" for n in range(4)]
    assert trace.get_session() == {"config_key": "agent", "session_id": "main"}


def test_the_legacy_session_is_per_asyncio_task(spans: CapturedSpans) -> None:
    async def main() -> Dict[int, Any]:
        all_set = asyncio.Event()
        ready: List[int] = []
        seen: Dict[int, Any] = {}

        async def task(n: int) -> None:
            trace.set_session("agent", f"task-{n}")
            ready.append(n)
            if len(ready) == 5:
                all_set.set()
            await all_set.wait()  # every task has set its own before any reads
            seen[n] = trace.get_session()
            ask(str(n))

        trace.set_session("agent", "outer")
        await asyncio.gather(*(task(n) for n in range(5)))
        seen[-1] = trace.get_session()
        return seen

    seen = asyncio.run(main())
    assert {n: s["session_id"] for n, s in seen.items()} == {
        -1: "outer", **{n: f"task-{n}" for n in range(5)}}
    assert sorted(r["session_id"] for r in spans) == [f"task-{n}" for n in range(5)]


# -- span: custom metrics ------------------------------------------------------------------
def test_span_errors_are_0_2_7s(servers: ConfigServer) -> None:
    with pytest.raises(RuntimeError, match=r"^Fallom not initialized\. Call fallom\.init\(\)"):
        trace.span({"score": 1})
    trace.init(KEY)
    with pytest.raises(ValueError, match=r"^No session context\. Either call set_session\(\)"):
        trace.span({"score": 1})
    with pytest.raises(ValueError, match="No session context"):
        trace.span({"score": 1}, config_key="agent")  # a session id too is needed
    trace.shutdown()
    with pytest.raises(RuntimeError, match="Fallom not initialized"):
        trace.span({"score": 1}, config_key="agent", session_id="s-1")


def test_span_posts_to_traces_url_spans_with_the_key(
        servers: ConfigServer, traces_server: TracesServer) -> None:
    trace.init(KEY, traces_server.url)
    data: Dict[str, Any] = {"outlier_score": 0.8, "conversion": True, "seen": {3}}
    trace.span(data, config_key="agent", session_id="s-explicit")
    data["outlier_score"] = 0.1  # copied at the call, as it was
    trace.set_session("agent", "s-context")
    trace.span({"engagement": 42})
    assert traces_server.wait_for_requests(2)
    assert [r["path"] for r in traces_server.requests] == ["/spans", "/spans"]
    assert {r["headers"]["Authorization"] for r in traces_server.requests} == {f"Bearer {KEY}"}
    assert traces_server.records == [
        {"config_key": "agent", "session_id": "s-explicit",
         "data": {"outlier_score": 0.8, "conversion": True, "seen": [3]}},
        {"config_key": "agent", "session_id": "s-context", "data": {"engagement": 42}}]


def test_span_never_waits_on_the_server_and_uses_one_thread_not_one_per_call(
        servers: ConfigServer, traces_server: TracesServer) -> None:
    trace.init(KEY, traces_server.url)
    traces_server.then(("hang",))
    trace.set_session("agent", "s-1")
    trace.span({"n": 0})
    assert traces_server.wait_for_requests(1)  # held, unanswered, by the server
    for n in range(1, 5):
        trace.span({"n": n})  # each returns while the first request hangs
    traces_server.release()  # the held request is dropped unanswered; the rest follow
    assert traces_server.wait_for_requests(5)
    assert [json.loads(r["body"])["data"]["n"] for r in traces_server.requests] == [
        0, 1, 2, 3, 4]
    assert traces_server.peak_in_flight == 1  # one reporter thread, in order


def test_span_sends_nothing_without_a_key(traces_server: TracesServer) -> None:
    trace.init(base_url=traces_server.url)
    trace.set_session("agent", "s-1")
    trace.span({"n": 1})  # no error: local mode
    assert fallom.tracing._runtime.STATE.experiments is None  # nothing could send it
    assert traces_server.requests == []


def test_span_sends_nothing_with_tracing_off(servers: ConfigServer,
                                             traces_server: TracesServer) -> None:
    fallom.init(api_key=KEY, traces_url=traces_server.url, tracing=False)
    trace.span({"n": 1}, config_key="agent", session_id="s-1")
    # the reporter sends in order: had the span been queued, it would arrive first
    reporter = fallom.tracing._runtime.STATE.experiments.fetcher.reporter
    reporter.post(f"{traces_server.url}/after", {})
    assert traces_server.wait_for_requests(1)
    assert [r["path"] for r in traces_server.requests] == ["/after"]


# -- wrap_* --------------------------------------------------------------------------------
def test_wrap_with_a_session_context_records_in_that_session(
        spans: CapturedSpans, provider_server: ProviderServer) -> None:
    openai = pytest.importorskip("openai")
    anthropic = pytest.importorskip("anthropic")
    genai = pytest.importorskip("google.genai")
    context = trace.SessionContext("bot", "s-ctx", "u-1", {"plan": "pro"}, ("beta",))
    raw = openai.OpenAI(api_key="sk", base_url=provider_server.url + "/v1", max_retries=0)
    gpt = trace.wrap_openai(raw, context)
    claude = trace.wrap_anthropic(anthropic.Anthropic(
        api_key="k", base_url=provider_server.url, max_retries=0), context)
    gemini = trace.wrap_google_ai(genai.Client(
        api_key="k", http_options={"base_url": provider_server.url}), context)
    trace.set_session("other", "s-other")  # a wrapper's own session wins over the context's
    gpt.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    claude.messages.create(model="claude-x", max_tokens=5, messages=MESSAGES)
    gemini.models.generate_content(model="gemini-2.0-flash", contents="Say hello")
    raw.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # left untraced
    assert [r["attributes"][PROVIDER] for r in spans] == ["openai", "anthropic", "google"]
    for record in spans:
        assert (record["session_id"], record["customer_id"], record["metadata"]) == (
            "s-ctx", "u-1", {"plan": "pro"})
        assert view(record).output == "Hello"


def test_wrap_without_a_session_takes_the_one_current_at_each_call(
        spans: CapturedSpans, provider_server: ProviderServer) -> None:
    legacy = pytest.importorskip("google.generativeai")
    legacy.configure(api_key="k", transport="rest",
                     client_options={"api_endpoint": provider_server.url})
    model = trace.wrap_google_ai(legacy.GenerativeModel("gemini-1.5-flash"))
    assert isinstance(model, legacy.GenerativeModel)
    trace.set_session("agent", "first")
    model.generate_content("hi")
    with fallom.session("agent", "second"):
        model.generate_content("hi")
    assert [r["session_id"] for r in spans] == ["first", "second"]
    assert [r["attributes"][PROVIDER] for r in spans] == ["google", "google"]


def test_wrap_refuses_what_is_not_that_providers_client() -> None:
    with pytest.raises(TypeError, match="as a client of openai"):
        trace.wrap_openai(object())
    with pytest.raises(ValueError, match="session_id"):
        trace.wrap_anthropic(object(), trace.SessionContext("bot", ""))


# -- LangChain -----------------------------------------------------------------------------
def test_callback_handlers_record_runs_in_their_session(spans: CapturedSpans) -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.runnables import RunnableLambda

    chain: RunnableLambda[str, str] = RunnableLambda(lambda q: f"answer to {q}")
    handler = trace.FallomCallbackHandler("lc", "s-handler", "u-1", {"plan": "pro"}, ["beta"])
    from_session = trace.callback_handler_from_session(fallom.session("lc", "s-from"))
    assert chain.invoke("q", config={"callbacks": [handler]}) == "answer to q"
    chain.invoke("q", config={"callbacks": [from_session]})
    first, second = spans
    assert (first["session_id"], first["customer_id"], first["metadata"], first["tags"]) == (
        "s-handler", "u-1", {"plan": "pro"}, ["beta"])
    assert second["session_id"] == "s-from"
    assert view(first).output == "answer to q"
