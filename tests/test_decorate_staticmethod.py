"""@trace_llm outside @staticmethod."""

from __future__ import annotations

import fallom
from fallom.testing import CapturedSpans, view


class Tools:
    @fallom.trace_llm
    @staticmethod
    def shout(text: str) -> str:
        """Upper-case the text."""
        return text.upper()


def test_identity_is_preserved() -> None:
    assert Tools.shout.__name__ == "shout"
    assert Tools.shout.__qualname__ == "Tools.shout"
    assert Tools.shout.__doc__ == "Upper-case the text."


def test_called_on_class_and_instance(spans: CapturedSpans) -> None:
    assert Tools.shout("a") == "A"
    assert Tools().shout(text="b") == "B"
    assert [view(r).input for r in spans] == [{"text": "a"}, {"text": "b"}]
    assert spans.names() == ["Tools.shout", "Tools.shout"]
