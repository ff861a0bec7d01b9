"""Managed prompts: rendering, pinning, A/B tests, and marking the next LLM span."""

from __future__ import annotations

from typing import Any

import pytest

import fallom
from fallom.prompts import render
from fallom.testing import capture_spans

from ._config_server import ConfigServer
from .test_assign import reference
from .test_models import start  # its cold wait only a hang exhausts, on a loaded machine too


def test_render_is_one_pass_and_never_evaluates() -> None:
    assert render("Hi {{name}}, {{ name }}!", {"name": "Ann"}) == "Hi Ann, Ann!"
    assert render("{{a}}", {"a": "{{b}}", "b": "no"}) == "{{b}}"
    assert render("{{missing}} {{x}}", {"x": 1}) == "{{missing}} 1"
    assert render("{{__import__('os')}} {{ x.y }}", {"x.y": "dotted"}) == (
        "{{__import__('os')}} {{ x.y }}")  # \w only, as the references
    assert render("{{1st}} {{first-name}} {{ toString }}", {"1st": "one", "first-name": "F"}
                  ) == "one {{first-name}} {{ toString }}"
    assert render("{{flag}} {{none}} {{名前}}", {"flag": True, "none": None, "名前": "N"}) == (
        "True None N")  # str() as the published Python SDK; Unicode \w
    assert render("{ {x} } {{{x}}}", {"x": "X"}) == "{ {x} } {X}"


def test_get_latest_and_pinned(config_server: ConfigServer) -> None:
    config_server.add_prompt("support", "You are v1.", "Help {{user}}")
    config_server.add_prompt("support", "You are v2 for {{company}}.", "Help {{user}} now")
    start(config_server)
    prompt = fallom.prompts.get("support", variables={"user": "Ann", "company": "Acme"})
    assert (prompt.key, prompt.version, prompt.system, prompt.user) == (
        "support", 2, "You are v2 for Acme.", "Help Ann now")
    assert (prompt.ab_test_key, prompt.variant_index) == (None, None)
    old = fallom.prompts.get("support", version=1, variables={"user": "Bo"})
    assert (old.version, old.user) == (1, "Help Bo")
    fallom.prompts.get("support", version=1)
    assert config_server.count("/prompts/support/version/1") == 1
    with pytest.raises(ValueError, match="'nope'"):
        fallom.prompts.get("nope")
    with pytest.raises(ValueError, match="version 7"):
        fallom.prompts.get("support", version=7)
    assert fallom.prompts.get("support", version="1").version == 1  # 0.2.7 took digits
    assert config_server.count("/prompts/support/version/1") == 1  # the same cache entry


@pytest.mark.parametrize(("call", "named"), [
    (lambda: fallom.prompts.get(123), "prompt_key must be a non-empty string"),  # type: ignore
    (lambda: fallom.prompts.get("support", version="latest"), "version must be a whole number"),
    (lambda: fallom.prompts.get("support", variables="Ann"), "variables must be a mapping"),
    (lambda: fallom.prompts.get_ab(None, "s"), "ab_test_key must be"),  # type: ignore
    (lambda: fallom.prompts.get_ab("exp", 42), "session_id must be a string"),  # type: ignore
    (lambda: fallom.prompts.get_ab("exp", "s", variables=["Ann"]), "variables must be"),
])
def test_wrong_arguments_are_named_not_ignored(config_server: ConfigServer, call: Any,
                                               named: str) -> None:
    config_server.add_prompt("support", "You are v1.", "Help {{user}}")
    start(config_server)
    with pytest.raises(ValueError, match=named):
        call()


def test_ab_test_is_sticky_and_matches_the_bucket(config_server: ConfigServer) -> None:
    config_server.add_prompt("a", "A", "a")
    config_server.add_prompt("b", "B1", "b")
    config_server.add_prompt("b", "B2", "b")
    config_server.ab_tests = [{"key": "exp", "version": 1, "variants": [
        {"prompt_key": "a", "weight": 30}, {"prompt_key": "b", "prompt_version": 1, "weight": 70}]}]
    start(config_server)
    for n in range(300):
        sid = f"s{n}"
        prompt = fallom.prompts.get_ab("exp", sid)
        index = reference(sid, [30, 70])
        assert (prompt.variant_index, prompt.ab_test_key) == (index, "exp")
        assert prompt.system == ("A" if index == 0 else "B1")
    with pytest.raises(ValueError, match="'nope'"):
        fallom.prompts.get_ab("nope", "s")


def test_prompt_marks_only_the_next_llm_span(config_server: ConfigServer) -> None:
    config_server.add_prompt("support", "sys", "user")
    start(config_server)

    @fallom.trace_llm
    def call(prompt: Any) -> str:
        return "ok"

    with capture_spans() as spans:
        prompt = fallom.prompts.get("support")
        with fallom.span("not-llm"):
            call(prompt.user)
        call("again")
    first, span_record, second = spans
    assert (first["prompt_key"], first["prompt_version"]) == ("support", 1)
    assert "prompt_key" not in span_record
    assert "prompt_key" not in second


def test_ab_prompt_fields_on_the_span(config_server: ConfigServer) -> None:
    config_server.add_prompt("a", "A", "a")
    config_server.ab_tests = [{"key": "exp", "version": 3, "variants": [
        {"prompt_key": "a", "weight": 100}]}]
    start(config_server)

    @fallom.trace_llm
    def call() -> str:
        return "ok"

    with capture_spans() as spans:
        fallom.prompts.get_ab("exp", "s1")
        call()
    record = spans[0]
    assert (record["prompt_key"], record["prompt_version"], record["prompt_ab_test_key"],
            record["prompt_variant_index"]) == ("a", 1, "exp", 0)


def test_malformed_ab_test_is_rejected(config_server: ConfigServer) -> None:
    config_server.add_prompt("a", "A", "a")
    config_server.ab_tests = [{"key": "exp", "version": 1, "variants": [
        {"prompt_key": "a", "weight": "lots"}]}]
    start(config_server)
    with pytest.raises(ValueError, match="'exp'"):
        fallom.prompts.get_ab("exp", "s")
