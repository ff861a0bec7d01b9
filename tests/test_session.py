"""Sessions: required fields, propagation to every span, nesting, frozen copies."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

import fallom
from fallom.testing import CapturedSpans


@pytest.mark.parametrize(("config_key", "session_id"), [("", "s"), ("c", ""), (None, "s"),
                                                        ("c", None), ("  ", "s")])
def test_config_key_and_session_id_are_required(config_key: object, session_id: object) -> None:
    with pytest.raises(ValueError, match=r"config_key|session_id"):
        fallom.session(config_key=config_key, session_id=session_id)  # type: ignore[arg-type]


def helper() -> None:
    with fallom.span("deep"):
        pass


def test_every_span_in_the_block_carries_the_session(spans: CapturedSpans) -> None:
    with fallom.session(config_key="agent", session_id="s-1", customer_id="u-1",
                        metadata={"plan": "pro"}, tags=["beta"]):
        helper()
    helper()
    inside, outside = spans
    assert (inside["config_key"], inside["session_id"], inside["customer_id"]) == (
        "agent", "s-1", "u-1")
    assert inside["metadata"] == {"plan": "pro"}
    assert inside["tags"] == ["beta"]
    assert outside["session_id"] == outside["trace_id"]  # a session of its own
    assert outside["config_key"] == "default"
    assert "metadata" not in outside


def test_inner_session_wins_inside_its_block(spans: CapturedSpans) -> None:
    with fallom.session(config_key="a", session_id="outer"):
        with fallom.session(config_key="b", session_id="inner"):
            helper()
        helper()
    assert [r["session_id"] for r in spans] == ["inner", "outer"]


def test_async_session(spans: CapturedSpans) -> None:
    async def main() -> None:
        async with fallom.session(config_key="a", session_id="as-1") as s:
            assert s.session_id == "as-1"
            helper()

    asyncio.run(main())
    assert spans[0]["session_id"] == "as-1"


def test_get_context_is_a_frozen_copy() -> None:
    metadata = {"tier": "gold"}
    session = fallom.session(config_key="a", session_id="s", metadata=metadata, tags=["x"])
    metadata["tier"] = "changed"
    context = session.get_context()
    assert context.metadata["tier"] == "gold"
    assert context.tags == ("x",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.session_id = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        context.metadata["tier"] = "x"  # type: ignore[index]


def test_session_usable_without_with() -> None:
    session = fallom.session(config_key="a", session_id="plain")
    assert session.config_key == "a"
    assert "plain" in repr(session)


def test_wrapping_what_is_not_that_providers_client_fails_at_once() -> None:
    openai = pytest.importorskip("openai")
    anthropic = pytest.importorskip("anthropic")
    session = fallom.session(config_key="c", session_id="s")
    openai_client = openai.OpenAI(api_key="sk-test", base_url="http://127.0.0.1:9")
    anthropic_client = anthropic.Anthropic(api_key="sk-test", base_url="http://127.0.0.1:9")
    for wrap, client, provider in ((session.wrap_openai, None, "openai"),
                                   (session.wrap_anthropic, openai_client, "anthropic"),
                                   (session.wrap_openai, anthropic_client, "openai"),
                                   (session.wrap_google_ai, openai_client, "google")):
        # wrapped, it would have run untraced without a word
        with pytest.raises(TypeError, match=f"as a client of {provider}: it has no [a-z_.]+$"):
            wrap(client)
    assert session.wrap_openai(openai_client).chat.completions.create  # the right one works
