"""@trace_llm on instance methods: self is bound, not recorded."""

from __future__ import annotations

import fallom
from fallom.testing import CapturedSpans, view

from ._helpers import assert_same_identity


class Bot:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def ask(self, question: str) -> str:
        """Ask the bot."""
        return self.prefix + question

    traced_ask = fallom.trace_llm(ask)

    @fallom.trace_llm
    def reply(self, question: str) -> str:
        """Reply."""
        return self.prefix + question


def test_identity_is_preserved() -> None:
    assert_same_identity(Bot.ask, Bot.traced_ask)
    assert Bot.reply.__qualname__ == "Bot.reply"
    assert Bot("x").reply.__name__ == "reply"


def test_self_is_not_recorded(spans: CapturedSpans) -> None:
    assert Bot("> ").reply("hi") == "> hi"
    assert spans[0]["name"] == "Bot.reply"
    assert view(spans[0]).input == {"question": "hi"}


def test_called_through_the_class(spans: CapturedSpans) -> None:
    bot = Bot("> ")
    assert Bot.reply(bot, question="yo") == "> yo"
    assert view(spans[0]).input == {"question": "yo"}
