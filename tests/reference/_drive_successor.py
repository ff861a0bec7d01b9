"""Runs under the published ``fallom==0.2.7`` and under this SDK: the same program, twice.

Usage: python _drive_successor.py BACKEND_URL PROVIDER_URL BLOCKS.json OUT.json [SITE_DIR]

Every Python code block of 0.2.7's README (BLOCKS.json: ``[[section, source]...]``,
as the test reads them from the wheel's METADATA), then one call of each public
function of 0.2.7, each as a "step" of its own: a fresh ``contextvars.Context``,
the API key ``key-NN`` (so the test tells the steps' requests apart by their
``Authorization`` header), and, after it, ``fallom.shutdown()`` and the end of
0.2.7's sender threads, so every request of a step has reached the backend
before the next step starts.

The README blocks run as written: what they take from the blocks before them
(``session``, ``openai``, ``session_id``, ``models``, ``prompts``, ``OpenAI``,
``Anthropic``) is given, and the provider SDKs find the local fake provider
through their own environment variables (``OPENAI_BASE_URL``...), as 0.2.7's
README has them find the real ones. SITE_DIR, when given, is appended to
``sys.path``: the provider SDKs of the suite's environment, lent to 0.2.7's, so
both run the same client code.

Writes ``{"steps": [{"step", "key", "returned", "raised"}...]}``: what each step
returned (JSON; an object as its type and public fields) and the type of what
it raised. Not imported by the suite.
"""

import ast
import asyncio
import concurrent.futures
import contextvars
import dataclasses
import inspect
import json
import os
import sys
import threading
from collections.abc import Mapping

BACKEND, PROVIDER, BLOCKS, OUT = sys.argv[1:5]
if len(sys.argv) > 5:
    sys.path.append(sys.argv[5])

import anthropic  # noqa: E402
import openai  # noqa: E402

import fallom  # noqa: E402
from fallom import models, prompts, trace  # noqa: E402

MESSAGES = [{"role": "user", "content": "Say hello"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
# 0.2.7 sends from a thread per request, named after its target (Python >= 3.10);
# "fallom-report" is this SDK's reporter of /sessions and /spans
SENDERS = ("_send_trace_sync", "_record_session", "_send_span", "_fetch", "fallom-report")
STEPS = []


# -- what a value looks like, the same way under both SDKs -------------------------------
def describe(value, depth=0):
    """``value`` as JSON: plain values as they are, objects as their type and fields."""
    if depth > 8:
        return "<deep>"
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): describe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [describe(v, depth + 1) for v in value]
    if isinstance(value, concurrent.futures.Future):
        return {"future": describe(value.result(timeout=30), depth + 1)}
    kind = value.__class__.__name__
    if dataclasses.is_dataclass(value):
        return {"type": kind, "fields": {f.name: describe(getattr(value, f.name), depth + 1)
                                         for f in dataclasses.fields(value)}}
    if callable(getattr(value, "model_dump", None)):  # a provider SDK's response
        return {"type": kind, "dump": value.model_dump(mode="json")}
    if callable(getattr(value, "get_context", None)):  # a FallomSession
        return {"type": kind, "context": describe(value.get_context(), depth + 1)}
    return {"type": kind}


def step(name):
    def register(function):
        STEPS.append((name, function))
        return function
    return register


def settle():
    """Stop fallom and wait for every request a sender thread of it still has to make."""
    fallom.shutdown()
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and any(s in thread.name for s in SENDERS):
            thread.join(10)


def run(name, function, key):
    os.environ["FALLOM_API_KEY"] = key
    found = {"step": name, "key": key, "returned": None, "raised": None}
    try:
        found["returned"] = describe(contextvars.Context().run(function, key))
    except Exception as exc:  # an answer too: what a program would see raised
        found["raised"] = type(exc).__name__
    finally:
        settle()
    return found


# -- 0.2.7's README, block by block ------------------------------------------------------
def readme_step(source):
    """A step running ``source`` as a module would, after the blocks before it."""
    def block(key):
        if "fallom.init(" not in source:  # "Initialize Fallom once at app startup"
            fallom.init(api_key=key)
        session = fallom.session(config_key="my-app", session_id="session-123",
                                 customer_id="user-456")
        given = {"fallom": fallom, "models": models, "prompts": prompts,
                 "OpenAI": openai.OpenAI, "Anthropic": anthropic.Anthropic,
                 "session": session, "session_id": "conv-42",
                 "openai": session.wrap_openai(openai.OpenAI())}
        names = dict(given)
        raised = None
        try:
            code = compile(source, "<README>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            awaited = eval(code, names)
            if inspect.iscoroutine(awaited):  # a block with a top-level await
                asyncio.run(awaited)
        except Exception as exc:
            raised = type(exc).__name__
        made = {k: v for k, v in names.items() if not k.startswith("__") and not (
            inspect.ismodule(v) or inspect.isclass(v) or inspect.isroutine(v))
            and (k not in given or v is not given[k])}
        return {"raised": raised, "names": made}
    return block


# -- one call of each public function of 0.2.7 -------------------------------------------
def getters():
    return {"is_initialized": trace.is_initialized(),
            "should_capture_content": trace.should_capture_content(),
            "get_api_key": trace.get_api_key(), "get_base_url": trace.get_base_url(),
            "is_debug_mode": trace.is_debug_mode()}


def attempt(function, *args, **kwargs):
    """What ``function`` returned, or ``{"raised": type}``: one observation of many."""
    try:
        return describe(function(*args, **kwargs))
    except Exception as exc:
        return {"raised": type(exc).__name__}


def client(path="/v1"):
    return openai.OpenAI(api_key="sk", base_url=PROVIDER + path, max_retries=0)


def gemini():
    import google.generativeai as genai

    genai.configure(api_key="k", transport="rest", client_options={"api_endpoint": PROVIDER})
    return genai.GenerativeModel("gemini-1.5-flash")


def started(key, **kwargs):
    fallom.init(api_key=key, **kwargs)
    return fallom.session(config_key="my-app", session_id="s-calls", customer_id="u-1",
                          metadata={"plan": "pro"}, tags=["calls"])


@step("fallom.init by position")
def _init_by_position(key):
    fallom.init(key, BACKEND, BACKEND, BACKEND, True, False)
    return getters()


@step("fallom.init(debug=True)")
def _init_debug(key):
    fallom.init(api_key=key, debug=True)
    return getters()


@step("fallom.init twice")
def _init_twice(key):
    fallom.init(api_key=key)
    fallom.init(api_key=key, capture_content=False)
    return getters()


@step("fallom.init without a key")
def _init_without_key(key):
    del os.environ["FALLOM_API_KEY"]
    try:
        return {"init": attempt(fallom.init), **getters()}
    finally:
        os.environ["FALLOM_API_KEY"] = key


@step("FALLOM_CAPTURE_CONTENT=false")
def _capture_from_environment(key):
    os.environ["FALLOM_CAPTURE_CONTENT"] = "false"
    try:
        fallom.init()
        return getters()
    finally:
        os.environ["FALLOM_CAPTURE_CONTENT"] = "true"


@step("fallom.session by position")
def _session_by_position(key):
    fallom.init(api_key=key)
    return {"session": attempt(fallom.session, "my-app", "s-pos", "u-9", {"a": 1}, ["t"]),
            "trace.session": attempt(trace.session, "my-app", "s-pos", "u-9"),
            "FallomSession": attempt(fallom.FallomSession, "my-app", "s-pos", "u-9")}


@step("FallomSession.get_context")
def _get_context(key):
    return {"full": started(key).get_context(),
            "bare": fallom.session(config_key="my-app", session_id="s").get_context()}


@step("FallomSession.get_model")
def _get_model(key):
    session = started(key)

    async def models_of_session():
        return {"default": await session.get_model(),
                "config_key": await session.get_model("summarizer-config"),
                "by_position": await session.get_model("my-config", "fallback-model", 1),
                "fallback": await session.get_model("no-such-config", fallback="gpt-4o-mini"),
                "version": await session.get_model(config_key="my-config", version=2)}
    return asyncio.run(models_of_session())


@step("FallomSession.get_model without a config")
def _get_model_missing(key):
    return asyncio.run(started(key).get_model("no-such-config"))


@step("FallomSession.wrap_openai: chat")
def _wrap_openai_chat(key):
    plain = client()
    wrapped = started(key).wrap_openai(plain)
    return {"same_object": wrapped is plain, "isinstance": isinstance(wrapped, openai.OpenAI),
            "chat": wrapped.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)}


@step("FallomSession.wrap_openai: tools")
def _wrap_openai_tools(key):
    wrapped = started(key).wrap_openai(client())
    return wrapped.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS)


@step("FallomSession.wrap_openai: responses")
def _wrap_openai_responses(key):
    return started(key).wrap_openai(client()).responses.create(model="gpt-4o",
                                                                input="Say hello")


@step("FallomSession.wrap_openai: error")
def _wrap_openai_error(key):
    wrapped = started(key).wrap_openai(client("/missing/v1"))
    return wrapped.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


@step("FallomSession.wrap_openai: stream")
def _wrap_openai_stream(key):
    wrapped = started(key).wrap_openai(client())
    stream = wrapped.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                             stream=True)
    return [chunk.choices[0].delta.content for chunk in stream if chunk.choices]


@step("FallomSession.wrap_openai: async")
def _wrap_openai_async(key):
    wrapped = started(key).wrap_openai(openai.AsyncOpenAI(
        api_key="sk", base_url=PROVIDER + "/v1", max_retries=0))
    return asyncio.run(wrapped.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES))


@step("FallomSession.wrap_openai: the client passed, used")
def _wrap_openai_in_place(key):
    plain = client()
    started(key).wrap_openai(plain)  # 0.2.7 traced the client itself
    return plain.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


@step("FallomSession.wrap_anthropic")
def _wrap_anthropic(key):
    plain = anthropic.Anthropic(api_key="k", base_url=PROVIDER, max_retries=0)
    wrapped = started(key).wrap_anthropic(plain)
    return {"same_object": wrapped is plain,
            "message": wrapped.messages.create(model="claude-x", max_tokens=5,
                                               messages=MESSAGES, system="Be brief")}


@step("FallomSession.wrap_google_ai")
def _wrap_google_ai(key):
    model = gemini()
    wrapped = started(key).wrap_google_ai(model)
    return {"same_object": wrapped is model, "text": wrapped.generate_content("Say hello").text}


@step("FallomSession.langchain_callback")
def _langchain_callback(key):
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_openai import ChatOpenAI

    handler = started(key).langchain_callback()
    llm = ChatOpenAI(model="gpt-4o-mini", api_key="sk", base_url=PROVIDER + "/v1",
                     max_retries=0, callbacks=[handler])
    return {"handler": isinstance(handler, BaseCallbackHandler),
            "content": llm.invoke("Say hello").content}


@step("trace.FallomCallbackHandler, callback_handler_from_session")
def _callback_handlers(key):
    from langchain_core.callbacks import BaseCallbackHandler

    session = started(key)
    made = [trace.FallomCallbackHandler("my-app", "s-cb", "u-1", {"a": 1}, ["t"]),
            trace.FallomCallbackHandler(config_key="my-app", session_id="s-cb"),
            trace.callback_handler_from_session(session)]
    return [isinstance(h, BaseCallbackHandler) for h in made]


@step("models.init, models.get")
def _models(key):
    models.init(key, BACKEND)
    return {"latest": attempt(models.get, "my-config", "s-1"),
            "by_position": attempt(models.get, "my-config", "s-2", 1, "fb", None, None, False),
            "version": attempt(models.get, "my-config", "s-3", version=2),
            "missing_version": attempt(models.get, "my-config", "s-4", version=9, fallback="fb"),
            "fallback": attempt(models.get, "no-such-config", "s-5", fallback="fb"),
            "no_fallback": attempt(models.get, "no-such-config", "s-6"),
            "customer": attempt(models.get, "my-config", "s-7", customer_id="vip-1"),
            "context": attempt(models.get, "my-config", "s-8", context={"plan": "enterprise"}),
            "debug": attempt(models.get, "my-config", "s-9", debug=True)}


@step("prompts.init, get, get_ab, get_prompt_context, clear_prompt_context")
def _prompts(key):
    prompts.init(key, BACKEND)
    variables = {"user_name": "John", "company": "Acme"}
    found = {"get": attempt(prompts.get, "onboarding", variables)}
    found["context_after_get"] = prompts.get_prompt_context()
    found["pinned"] = attempt(prompts.get, "onboarding", None, 1)
    found["ab"] = attempt(prompts.get_ab, "onboarding-test", "s-1", variables)
    found["context_after_ab"] = prompts.get_prompt_context()
    prompts.clear_prompt_context()
    found["context_after_clear"] = prompts.get_prompt_context()
    found["missing"] = attempt(prompts.get, "no-such-prompt")
    found["missing_version"] = attempt(prompts.get, "onboarding", version=9)
    found["missing_ab"] = attempt(prompts.get_ab, "no-such-test", "s-1")
    return found


@step("prompts.get, then two LLM calls")
def _prompt_tags_the_next_call(key):
    wrapped = started(key).wrap_openai(client())
    prompts.get("onboarding", variables={"user_name": "John"})
    wrapped.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    after_one = prompts.get_prompt_context()
    wrapped.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    return {"context_after_one_call": after_one}


@step("trace.init and its getters")
def _trace_init(key):
    trace.init(api_key=key, base_url=BACKEND, capture_content=False, debug=False)
    return getters()


@step("trace.set_session, get_session, span, clear_session")
def _legacy_session(key):
    fallom.init(api_key=key)
    found = {"set": trace.set_session("my-agent", "s-legacy", customer_id="u-2",
                                      metadata={"k": "v"}, tags=["a"])}
    found["get"] = trace.get_session()
    found["span"] = attempt(trace.span, {"outlier_score": 0.8, "engagement": 42})
    found["explicit"] = attempt(trace.span, {"x": 1}, config_key="c-2", session_id="s-2")
    found["clear"] = trace.clear_session()
    found["after_clear"] = trace.get_session()
    found["no_session"] = attempt(trace.span, {"x": 1})
    trace.set_session("my-agent", "s-bare")
    found["bare"] = trace.get_session()
    return found


@step("trace.span before init")
def _span_before_init(key):
    trace.shutdown()
    return trace.span({"x": 1}, config_key="c", session_id="s")


@step("trace.send_trace, send_trace_sync, TraceData.to_dict")
def _send_trace(key):
    fallom.init(api_key=key)
    record = trace.TraceData(
        config_key="my-app", session_id="s-manual", trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id="b7ad6b7169203331", name="manual", start_time="2025-01-01T00:00:00+00:00",
        end_time="2025-01-01T00:00:01+00:00", duration_ms=1000, status="OK", kind="custom",
        model="m", tags=["x"], attributes={"fallom.sdk_version": "2", "fallom.method": "manual",
                                           "fallom.raw.request": '{"q": 1}'})
    synced = dataclasses.replace(record, name="manual-sync", span_id="b7ad6b7169203332")
    return {"to_dict": record.to_dict(), "send": trace.send_trace(record),
            "sync": trace.send_trace_sync(synced)}


@step("trace types")
def _types(key):
    return {"SessionContext": trace.SessionContext("my-app", "s", "u", {"a": 1}, ["t"]),
            "TraceContext": trace.TraceContext("0af7651916cd43dd8448eb211c80319c"),
            "WaterfallTimings": trace.WaterfallTimings(),
            "SessionOptions": trace.SessionOptions("my-app", "s")}


@step("trace.wrap_openai, wrap_anthropic, wrap_google_ai")
def _trace_wrappers(key):
    fallom.init(api_key=key)
    context = trace.SessionContext("my-app", "s-trace-wrap", "u-3")
    chat = trace.wrap_openai(client(), context)
    claude = trace.wrap_anthropic(anthropic.Anthropic(api_key="k", base_url=PROVIDER,
                                                      max_retries=0), context)
    model = trace.wrap_google_ai(gemini(), context)
    return {"chat": chat.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES),
            "claude": claude.messages.create(model="claude-x", max_tokens=5, messages=MESSAGES),
            "gemini": model.generate_content("Say hello").text}


@step("fallom.shutdown, then a wrapped call")
def _after_shutdown(key):
    wrapped = started(key).wrap_openai(client())
    fallom.shutdown()
    return {"initialized": trace.is_initialized(),
            "chat": wrapped.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)}


@step("privacy mode: a wrapped call")
def _privacy(key):
    wrapped = started(key, capture_content=False).wrap_openai(client())
    return wrapped.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def main():
    with open(BLOCKS, encoding="utf-8") as handle:
        blocks = json.load(handle)
    planned = [(f"README: {name}", readme_step(source)) for name, source in blocks] + STEPS
    results = [run(name, function, f"key-{i:02d}") for i, (name, function) in enumerate(planned)]
    with open(OUT, "w", encoding="utf-8") as handle:
        json.dump({"steps": results}, handle, indent=1, sort_keys=True, default=repr)


main()
