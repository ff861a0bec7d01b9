"""session.trace_model: routes each kind of model object to its integration."""

from __future__ import annotations

from typing import Any, Dict

import pytest

import fallom
from fallom.testing import CapturedSpans, view

from . import _provider_server as wire


@pytest.fixture
def session() -> fallom.FallomSession:
    return fallom.session(config_key="tm", session_id="s-tm")


def test_provider_clients_go_to_their_wrappers(session: fallom.FallomSession) -> None:
    openai = pytest.importorskip("openai")
    anthropic = pytest.importorskip("anthropic")
    litellm = pytest.importorskip("litellm")
    from fallom.providers._proxy import ClientProxy

    client = session.trace_model(openai.OpenAI(api_key="k"))
    assert isinstance(client, openai.OpenAI)
    assert isinstance(client, ClientProxy)
    assert client._self_binding.provider.name == "openai"  # type: ignore[attr-defined]
    claude = session.trace_model(anthropic.Anthropic(api_key="k"))
    assert claude._self_binding.provider.name == "anthropic"  # type: ignore[attr-defined]
    module = session.trace_model(litellm)
    assert module._self_binding.provider.name == "litellm"  # type: ignore[attr-defined]


def test_a_generic_model_object(session: fallom.FallomSession, spans: CapturedSpans) -> None:
    class InHouseModel:
        def generate(self, prompt: str) -> Dict[str, Any]:
            return wire.openai_chat({"model": "in-house"})

        def describe(self) -> str:
            return "not traced"

    model = session.trace_model(InHouseModel())
    assert model.generate("hello")["choices"][0]["message"]["content"] == "Hello"
    assert model.describe() == "not traced"
    (record,) = spans
    assert (record["name"], view(record).input, view(record).total_tokens, record["session_id"]) == (
        "model.generate", "hello", 11, "s-tm")


def test_unsupported_objects_get_a_type_error(session: fallom.FallomSession) -> None:
    with pytest.raises(TypeError, match="trace_model cannot trace a int: it supports LangChain"):
        session.trace_model(42)
