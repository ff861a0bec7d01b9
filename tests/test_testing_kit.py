"""fallom.testing: capture_spans, deterministic ids, and the pytest fixture."""

from __future__ import annotations

import contextlib

import pytest

import fallom
from fallom.testing import capture_spans, deterministic, view

pytest_plugins = ["pytester"]


def test_capture_spans_works_without_init() -> None:
    with capture_spans() as spans:
        with fallom.span("a"):
            pass
    with fallom.span("after"):
        pass
    assert spans.names() == ["a"]
    assert spans.by_name("a")["kind"] == "span"
    with pytest.raises(AssertionError, match="found 0"):
        spans.by_name("missing")


def test_capture_spans_collects_what_ends_inside_its_block() -> None:
    fallom.init()
    before, after = contextlib.ExitStack(), contextlib.ExitStack()
    before.enter_context(fallom.span("started-before"))
    with capture_spans() as spans:
        before.close()
        after.enter_context(fallom.span("ended-after"))
    after.close()
    assert spans.names() == ["started-before"]


def test_deterministic_ids_and_clock() -> None:
    with deterministic(), capture_spans() as spans:
        with fallom.span("root"), fallom.span("child"):
            pass
    child, root = spans
    assert root["trace_id"] == "0" * 31 + "1"
    assert (root["span_id"], child["span_id"]) == ("0" * 15 + "1", "0" * 15 + "2")
    assert view(child).duration_ms == 1.0
    assert view(root).duration_ms == 3.0


def test_pytest_fixture_is_registered(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import fallom
        from fallom.testing import view

        @fallom.trace_llm
        def ask(q):
            return q.upper()

        def test_user(fallom_spans):
            assert ask("hi") == "HI"
            assert view(fallom_spans[0]).output == "HI"
            assert view(fallom_spans[0]).input == {"q": "hi"}
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
