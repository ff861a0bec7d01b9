"""init(): precedence, validation with named parameters, and re-init."""

from __future__ import annotations

import threading

import pytest

import fallom
from fallom.infra._config import resolve_settings
from fallom.tracing import _runtime


def test_argument_beats_environment_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALLOM_TRACES_URL", "https://env.example.com")
    monkeypatch.setenv("FALLOM_CAPTURE_CONTENT", "no")
    fallom.init(traces_url="https://arg.example.com/")
    assert _runtime.STATE.settings.traces_url == "https://arg.example.com"
    assert _runtime.STATE.settings.capture_content is False
    assert _runtime.STATE.settings.configs_url == "https://configs.fallom.com"


@pytest.mark.parametrize(("text", "value"), [("true", True), ("1", True), ("YES", True),
                                              ("false", False), ("0", False), ("no", False)])
def test_boolean_spellings(monkeypatch: pytest.MonkeyPatch, text: str, value: bool) -> None:
    monkeypatch.setenv("FALLOM_DEBUG", text)
    assert resolve_settings({}).debug is value


def test_each_init_resolves_afresh() -> None:
    fallom.init(capture_content=False, sample_rate=0.5)
    fallom.init()
    assert _runtime.STATE.settings.capture_content is True
    assert _runtime.STATE.settings.sample_rate == 1.0


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"capture_content": "maybe"}, "capture_content"),
    ({"traces_url": "traces.example.com"}, "traces_url"),
    ({"configs_url": "https://"}, "configs_url"),
    ({"prompts_url": "ftp://x.example.com"}, "prompts_url"),
    ({"sample_rate": 1.5}, "sample_rate"),
    ({"sample_rate": -0.1}, "sample_rate"),
    ({"max_queue_size": -1}, "max_queue_size"),
    ({"max_batch_size": 0}, "max_batch_size"),
    ({"compress": "sometimes"}, "compress"),
    ({"capture_max_chars": "lots"}, "capture_max_chars"),
    ({"shutdown_timeout": -1}, "shutdown_timeout"),
    ({"redact": "not callable"}, "redact"),
    ({"traces_url": "http://[::1"}, "traces_url"),  # urlsplit's own error named nothing
    ({"configs_url": "http://localhost:port"}, "configs_url"),
    ({"max_queue_size": 2.5}, "max_queue_size must be a whole number"),  # was cut to 2
    ({"max_queue_size": 0}, "max_queue_size must be at least 1, got 0"),
])
def test_bad_values_name_the_parameter(kwargs: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        fallom.init(**kwargs)


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALLOM_CAPTURE_CONTENT", "perhaps")
    with pytest.raises(ValueError, match="FALLOM_CAPTURE_CONTENT"):
        fallom.init()
    monkeypatch.setenv("FALLOM_CAPTURE_CONTENT", "true")
    monkeypatch.setenv("FALLOM_SAMPLE_RATE", "2")
    with pytest.raises(ValueError, match="FALLOM_SAMPLE_RATE"):
        fallom.init()


def test_unknown_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="traces_ulr"):
        fallom.init(traces_ulr="https://x.example.com")  # type: ignore[call-arg]


def test_missing_key_is_local_mode_and_never_raises() -> None:
    fallom.init(traces_url="https://traces.example.com")
    assert _runtime.STATE.settings.local_mode
    assert not any(type(p).__name__ == "BatchProcessor" for p in _runtime.STATE.processors)
    assert fallom.flush(0.1) is True


def test_repr_never_shows_the_key() -> None:
    settings = resolve_settings({"api_key": "sk-canary-123"})
    assert "sk-canary-123" not in repr(settings)


def test_reinit_does_not_leak_threads() -> None:
    class Sink:
        def export(self, records: list) -> bool:
            return True

    @fallom.trace_llm
    def call() -> int:
        return 1

    for _ in range(5):
        fallom.init(exporters=[Sink()])
        call()
        assert fallom.flush(2.0)
    workers = [t for t in threading.enumerate() if t.name == "fallom-export" and t.is_alive()]
    assert len(workers) <= 1
    assert fallom.stats()["sent"] == 5  # counters outlive the processors they came from
