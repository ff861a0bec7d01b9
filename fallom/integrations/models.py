"""``session.trace_model(model)``: wrap a model object directly, PostHog style."""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any, Dict

from fallom import extractors
from fallom.providers._base import Endpoint, Provider
from fallom.providers._proxy import ClientProxy, wrap_client

if TYPE_CHECKING:
    from fallom.tracing._session import FallomSession

__all__ = ["GENERIC_METHODS", "trace_model"]

GENERIC_METHODS = ("generate", "generate_content", "complete", "completion", "chat", "predict")


def _read(result: Any) -> Dict[str, Any]:
    return dict(extractors.extract(result) or {})


_GENERIC = Provider("model", {(name,): Endpoint("chat", "", ("input",), _read)
                              for name in GENERIC_METHODS})


def _module_of(target: Any) -> str:
    if isinstance(target, types.ModuleType):
        return target.__name__
    return type(target).__module__


def trace_model(session: FallomSession, model: Any) -> Any:
    """Route ``model`` to the right integration, or trace its generation methods."""
    target = model
    while isinstance(target, ClientProxy):
        target = target.__wrapped__
    module = _module_of(target)
    if module.split(".")[0] == "litellm" and hasattr(target, "completion"):
        return session.wrap_litellm(model)
    if module.startswith("openai"):
        return session.wrap_openai(model)
    if module.startswith("anthropic"):
        return session.wrap_anthropic(model)
    if module.startswith(("google.genai", "google.generativeai")):
        return session.wrap_google_ai(model)
    if any(k.__module__.startswith("langchain_core.language_models")
           for k in type(target).__mro__):
        return target.with_config(callbacks=[session.langchain_callback()])
    if any(callable(getattr(target, name, None)) for name in GENERIC_METHODS):
        return wrap_client(model, _GENERIC, session.get_context(), check=False)  # any of them
    raise TypeError(
        f"trace_model cannot trace a {type(target).__name__}: it supports LangChain chat "
        "models, OpenAI, Anthropic and Google clients, the litellm module, and objects with "
        f"a {' / '.join(GENERIC_METHODS)} method whose result fallom.extractors can read")
