"""@trace_llm on a plain function: identity, input, output, errors."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import fallom
from fallom.testing import CapturedSpans, view

from ._helpers import assert_same_identity


def plain(question: str, *, temperature: float = 0.5) -> str:
    """Answer a question."""
    return f"answer to {question}"


traced = fallom.trace_llm(plain)


def test_identity_is_preserved() -> None:
    assert_same_identity(plain, traced)
    assert traced.__wrapped__ is plain  # type: ignore[attr-defined]


def test_records_bound_arguments_and_return_value(spans: CapturedSpans) -> None:
    assert traced("why", temperature=0.1) == "answer to why"
    (record,) = spans
    assert record["name"] == "plain"
    assert record["kind"] == "llm"
    assert view(record).input == {"question": "why", "temperature": 0.1}
    assert view(record).output == "answer to why"
    assert record["status"] == "OK"
    assert "parent_span_id" not in record


def test_positional_arguments_are_bound_by_name(spans: CapturedSpans) -> None:
    @fallom.trace_llm
    def mixed(a: int, /, b: int, *rest: int, c: int = 0, **extra: int) -> int:
        return a + b + sum(rest) + c + sum(extra.values())

    assert mixed(1, 2, 3, 4, c=5, d=6) == 21
    assert view(spans[0]).input == {"a": 1, "b": 2, "rest": [3, 4], "c": 5, "extra": {"d": 6}}


def test_options_name_model_provider(spans: CapturedSpans) -> None:
    @fallom.trace_llm(name="summarise", model="gpt-4o-mini", provider="openai")
    def helper() -> str:
        return "ok"

    helper()
    record = spans.by_name("summarise")
    assert record["model"] == "gpt-4o-mini"
    assert record["attributes"]["gen_ai.request.model"] == "gpt-4o-mini"
    assert record["attributes"]["gen_ai.provider.name"] == "openai"


def test_locals_are_dropped_from_the_default_name(spans: CapturedSpans) -> None:
    def outer() -> object:
        @fallom.trace_llm
        def inner() -> int:
            return 1

        return inner

    outer()()  # type: ignore[operator]
    assert spans.names() == ["test_locals_are_dropped_from_the_default_name.outer.inner"]


def test_capture_flags_keep_input_and_output_out(spans: CapturedSpans) -> None:
    @fallom.trace_llm(capture_input=False, capture_output=False)
    def secret(password: str) -> str:
        return password[::-1]

    assert secret("hunter2") == "2retnuh"
    assert not view(spans[0]).has_input
    assert not view(spans[0]).has_output


def test_exception_is_recorded_and_reraised_unchanged(spans: CapturedSpans) -> None:
    error = KeyError("missing")

    @fallom.trace_llm
    def broken() -> None:
        raise error

    with pytest.raises(KeyError) as caught:
        broken()
    assert caught.value is error
    assert spans[0]["status"] == "ERROR"
    assert spans[0]["error_message"] == "KeyError: 'missing'"
    assert spans[0]["attributes"]["error.type"] == "KeyError"


def test_extractor_fills_record_fields(spans: CapturedSpans) -> None:
    def read(result: dict) -> dict:
        return {"model": result["m"], "prompt_tokens": 3, "completion_tokens": 4,
                "output": result["text"]}

    @fallom.trace_llm(extractor=read)
    def call() -> dict:
        return {"m": "claude-x", "text": "hello"}

    assert call() == {"m": "claude-x", "text": "hello"}
    record = spans[0]
    assert (record["model"], view(record).prompt_tokens, view(record).completion_tokens,
            view(record).total_tokens, view(record).output) == ("claude-x", 3, 4, 7, "hello")


def test_a_wrong_option_fails_at_decoration() -> None:
    with pytest.raises(TypeError, match="extractor"):
        fallom.trace_llm(extractor="nope")(plain)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name must be a string, got 5"):
        fallom.trace_llm(name=5)(plain)  # type: ignore[arg-type]  # was a span named 5
    with pytest.raises(ValueError, match="model must be a string"):
        fallom.trace_llm(model=["gpt-4o"])(plain)  # type: ignore[arg-type]


def test_mutating_an_argument_after_the_call_does_not_change_the_record(
    spans: CapturedSpans,
) -> None:
    messages = [{"role": "user", "content": "hi"}]

    @fallom.trace_llm
    def chat(messages: list) -> str:
        return "hello"

    chat(messages)
    messages.append({"role": "assistant", "content": "later"})
    assert view(spans[0]).input == {"messages": [{"role": "user", "content": "hi"}]}


def test_a_traced_function_set_on_a_class_later_becomes_a_method(spans: CapturedSpans) -> None:
    # fallom gives a plain function ``__self__ = None`` (so wrapt's per-call lookup of a
    # bound instance finds one instead of raising); binding must still work as before.
    def ask(self: Any, question: str) -> str:
        return f"{self.name}: {question}"

    traced = fallom.trace_llm(ask)

    class Bot:
        name = "bot"
        reply = traced

    assert Bot().reply("hi") == "bot: hi"
    assert traced(Bot(), "yo") == "bot: yo"
    assert inspect.signature(traced) == inspect.signature(ask)
    bound, direct = (view(r).input for r in spans)
    assert bound == {"question": "hi"}  # the instance is bound, not recorded
    assert direct["question"] == "yo"
    assert "Bot object" in direct["self"]  # called on the function: a plain argument
