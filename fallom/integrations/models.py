"""Any model object with a generation method, traced: what ``session.trace_model`` falls back to."""

from __future__ import annotations

from typing import Any, Dict

from fallom.providers._base import Endpoint, Provider
from fallom.providers._proxy import ClientProxy, wrap_client
from fallom.tracing import _extract
from fallom.tracing._session import SessionContext

__all__ = ["GENERIC_METHODS", "wrap_generic"]

GENERIC_METHODS = ("generate", "generate_content", "complete", "completion", "chat", "predict")


def _read(result: Any) -> Dict[str, Any]:
    return dict(_extract.extract(result) or {})


_GENERIC = Provider("model", {(name,): Endpoint("chat", "", ("input",), _read)
                              for name in GENERIC_METHODS})


def wrap_generic(model: Any, session: SessionContext) -> Any:
    """Trace ``model``'s generation methods (:data:`GENERIC_METHODS`) in ``session``, or
    raise ``TypeError`` when it has none."""
    target = model
    while isinstance(target, ClientProxy):
        target = target.__wrapped__
    if any(callable(getattr(target, name, None)) for name in GENERIC_METHODS):
        return wrap_client(model, _GENERIC, session, check=False)  # any of them
    raise TypeError(
        f"trace_model cannot trace a {type(target).__name__}: it supports LangChain chat "
        "models, OpenAI, Anthropic and Google clients, the litellm module, and objects with "
        f"a {' / '.join(GENERIC_METHODS)} method whose result fallom.extractors can read")
