"""capture_content=False and the redact hook: what must never leave."""

from __future__ import annotations

import json
import logging

import pytest

import fallom
from fallom.testing import capture_spans, view

SECRET = "s3cr3t-prompt-text"


@fallom.trace_llm
def leaky(prompt: str) -> str:
    if prompt == "fail":
        raise ValueError(f"cannot answer {SECRET}")
    return f"{SECRET} answer"


def test_capture_off_keeps_all_text_in_process() -> None:
    fallom.init(capture_content=False)
    with capture_spans() as spans:
        leaky(SECRET)
        with pytest.raises(ValueError):
            leaky("fail")
        with fallom.span("manual") as span:
            span.set_input(SECRET)
            span.set_output(SECRET)
            span.set_status("ERROR", SECRET)
    text = json.dumps(list(spans))
    assert SECRET not in text
    assert all(not view(r).has_input and not view(r).has_output for r in spans)
    assert spans[1]["error_message"] == "ValueError"


def test_capture_off_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALLOM_CAPTURE_CONTENT", "0")
    fallom.init()
    with capture_spans() as spans:
        leaky(SECRET)
    assert SECRET not in json.dumps(list(spans))


def test_redact_sees_every_record_and_can_drop() -> None:
    def redact(record: dict) -> dict | None:
        if record["name"] == "drop-me":
            return None
        record["attributes"]["fallom.raw.response"] = json.dumps({"text": "[redacted]"})
        return record

    fallom.init(redact=redact)
    with capture_spans() as spans:
        leaky("x")
        with fallom.span("drop-me"):
            pass
    assert [r["name"] for r in spans] == ["leaky"]
    assert view(spans[0]).output == "[redacted]"


def test_a_failing_redact_hook_drops_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    def redact(record: dict) -> dict:
        raise RuntimeError("hook bug")

    fallom.init(redact=redact)
    with caplog.at_level(logging.ERROR, logger="fallom"), capture_spans() as spans:
        assert leaky("x") == f"{SECRET} answer"
        leaky("y")
    assert list(spans) == []
    assert len([r for r in caplog.records if "redact" in r.getMessage()]) == 1
