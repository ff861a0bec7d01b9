"""@trace_llm outside @classmethod: cls is bound, not recorded."""

from __future__ import annotations

import fallom
from fallom.testing import CapturedSpans, view


class Factory:
    greeting = "hello"

    @fallom.trace_llm
    @classmethod
    def greet(cls, name: str) -> str:
        """Greet by name."""
        return f"{cls.greeting} {name}"


class Child(Factory):
    greeting = "hi"


def test_identity_is_preserved() -> None:
    assert Factory.greet.__name__ == "greet"
    assert Factory.greet.__qualname__ == "Factory.greet"
    assert Factory.greet.__doc__ == "Greet by name."


def test_cls_is_bound_and_not_recorded(spans: CapturedSpans) -> None:
    assert Factory.greet("ann") == "hello ann"
    assert Child().greet("bob") == "hi bob"
    assert [view(r).input for r in spans] == [{"name": "ann"}, {"name": "bob"}]
