"""Never break the host: internal errors are logged and swallowed (outside our tests)."""

from __future__ import annotations

import logging

import pytest

import fallom
from fallom import extractors
from fallom.infra._guard import report_internal_error
from fallom.testing import CapturedSpans, capture_spans, view

from ._records import own_attributes


class Weird:
    """A result type whose registered extractor is broken."""


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FALLOM_RAISE_INTERNAL_ERRORS")


def test_internal_errors_raise_under_the_test_suite() -> None:
    with pytest.raises(RuntimeError):
        report_internal_error(RuntimeError("bug"), "here")


def test_broken_extractor_never_changes_the_result(
    production: None, caplog: pytest.LogCaptureFixture
) -> None:
    extractors.register(Weird, lambda result: 1 / 0)  # type: ignore[arg-type, return-value]
    result = Weird()

    @fallom.trace_llm
    def call() -> Weird:
        return result

    fallom.init()
    with caplog.at_level(logging.WARNING, logger="fallom"), capture_spans() as spans:
        for _ in range(3):
            assert call() is result
    assert len(spans) == 3
    internal = [r for r in caplog.records if "internal error" in r.getMessage()]
    assert len(internal) == 1  # rate-limited


def test_user_exception_passes_through_a_broken_sdk(production: None) -> None:
    extractors.register(Weird, lambda result: 1 / 0)  # type: ignore[arg-type, return-value]

    class Boom(Exception):
        pass

    @fallom.trace_llm(extractor=lambda r: 1 / 0)  # type: ignore[arg-type, return-value]
    def call() -> None:
        raise Boom

    fallom.init()
    with pytest.raises(Boom):
        call()


def test_a_broken_exporter_does_not_reach_the_caller(production: None) -> None:
    class Broken:
        def export(self, records: list) -> bool:
            raise OSError("disk full")

    @fallom.trace_llm
    def call() -> int:
        return 7

    fallom.init(exporters=[Broken()])
    assert call() == 7
    assert fallom.flush(2.0) is False
    assert fallom.stats()["dropped"]["export_error"] == 1


def test_before_init_decorators_are_inert_and_cheap() -> None:
    calls = []

    @fallom.trace_llm
    def call(x: int) -> int:
        calls.append(x)
        return x

    with fallom.span("nothing") as span:
        assert call(2) == 2
    assert span.is_recording() is False
    assert calls == [2]
    for _ in range(10_000):  # its cost is measured by benchmarks/bench_tracing.py
        call(1)
    assert calls == [2] + [1] * 10_000


def test_tracing_disabled_records_nothing() -> None:
    fallom.init(tracing=False)

    @fallom.trace_llm
    def call() -> str:
        return "x"

    assert call() == "x"
    assert fallom.current_span().is_recording() is False


def test_sample_rate_keeps_or_drops_whole_traces() -> None:
    fallom.init(sample_rate=0.5)
    with capture_spans() as spans:
        for i in range(400):
            with fallom.span(f"root-{i}"), fallom.span(f"root-{i}/child"):
                pass
    roots = {r["trace_id"] for r in spans if "parent_span_id" not in r}
    children = {r["trace_id"] for r in spans if "parent_span_id" in r}
    assert roots == children
    assert 120 < len(roots) < 280
    fallom.init(sample_rate=0)
    with capture_spans() as none:
        with fallom.span("never"):
            pass
    assert list(none) == []


def test_a_wrong_argument_to_a_span_method_is_named_and_ignored(
        caplog: pytest.LogCaptureFixture, spans: CapturedSpans) -> None:
    # a user's mistake, not a fallom bug: no traceback, and never raised, even under our tests
    with caplog.at_level(logging.WARNING, logger="fallom"), fallom.span("x") as span:
        span.record_usage(prompt_tokens="lots of them", completion_tokens=4.0)
        span.record_usage(prompt_tokens="7")
        span.set_attributes("k=v")  # type: ignore[arg-type]
        span.set_attribute("k", "v")
    usage = view(spans[0])
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (7, 4, 11)
    assert own_attributes(spans[0]) == {"k": "v"}
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "fallom: Span.record_usage: prompt_tokens must be a whole number of tokens, got str; "
        "ignored",
        "fallom: Span.set_attributes: attributes must be a mapping, got str; ignored"]
    assert not any(r.exc_info for r in caplog.records)
    assert "lots of them" not in " ".join(messages)  # the value may be content


def test_a_failing_extractor_option_is_the_users_and_the_output_is_kept(
        caplog: pytest.LogCaptureFixture, spans: CapturedSpans) -> None:
    @fallom.trace_llm(name="listed", extractor=lambda result: [result])  # not a dict
    def listed() -> str:
        return "first"

    @fallom.trace_llm(name="raising", extractor=lambda result: result["usage"])  # KeyError
    def raising() -> dict:
        return {"text": "second"}

    with caplog.at_level(logging.WARNING, logger="fallom"):
        assert listed() == "first"
        assert raising() == {"text": "second"}
    assert [view(s).output for s in spans] == ["first", {"text": "second"}]
    first, second = caplog.records
    assert first.getMessage() == ("fallom: the extractor of 'listed': it must return a dict of "
                                  "record fields or None, got list; ignored")
    assert second.getMessage() == "fallom: the extractor of 'raising': it raised KeyError; ignored"
    assert second.exc_info is not None  # the user's traceback, to find their bug
