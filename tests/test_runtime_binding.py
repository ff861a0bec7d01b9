"""A span belongs to the runtime it started in: a later ``init()`` changes nothing about it.

The worker builds records after the span ended, maybe after ``init()`` swapped in
a new configuration: the redact hook, config key, capture limits and
processors must still be the span's own (issue 24, point 7).
"""

from __future__ import annotations

from typing import Any, Dict, List

import fallom
from fallom.testing import view


class Collect:
    """A user's exporter: keeps what it is given."""

    def __init__(self) -> None:
        self.records: List[Dict[str, Any]] = []

    def export(self, records: List[Dict[str, Any]]) -> bool:
        self.records.extend(records)
        return True


def start_idle(**settings: Any) -> None:
    """``init(**settings)`` with a worker that, past one flush, sleeps for a minute: what
    ends next is still queued when the next ``init()`` closes this pipeline."""
    fallom.init(batch_interval=60, **settings)
    with fallom.span("warm-up"):
        pass
    assert fallom.flush(5)


def test_a_queued_span_keeps_its_redact_hook_and_config_key() -> None:
    first, second = Collect(), Collect()
    start_idle(exporters=[first], config_key="first",
               redact=lambda record: None if record["name"] == "secret" else record)
    with fallom.span("secret") as secret:
        secret.set_input("my password")
    with fallom.span("kept"):
        pass
    fallom.init(exporters=[second], config_key="second")  # the old pipeline drains now

    assert [r["name"] for r in first.records] == ["warm-up", "kept"]
    assert [r["config_key"] for r in first.records] == ["first", "first"]
    assert "my password" not in repr(first.records + second.records)
    assert fallom.stats()["dropped"]["redacted"] == 1


def test_a_queued_span_keeps_its_capture_limits() -> None:
    first = Collect()
    start_idle(exporters=[first], capture_max_chars=8)
    with fallom.span("a-name-longer-than-eight") as span:
        span.set_input("an input longer than eight characters")
    fallom.init()  # default limits from here on

    record = first.records[-1]
    assert record["name"].startswith("a-name-l…[truncated")
    assert view(record).input.startswith("an input…[truncated")


def test_a_span_ends_where_it_started_not_in_the_next_runtime() -> None:
    first, second = Collect(), Collect()
    fallom.init(exporters=[first], config_key="first")
    with fallom.span("spanning-re-init"):
        fallom.init(exporters=[second], config_key="second")
    with fallom.span("after"):
        pass
    assert fallom.flush(5)

    assert [(r["name"], r["config_key"]) for r in second.records] == [("after", "second")]
    assert first.records == []  # its pipeline was closed before the span ended
    # counted where the user looks, though its processor was closed before it ended
    assert fallom.stats()["dropped"]["shutdown"] == 1
