"""LiteLLM: ``completion`` and ``acompletion``, through ``session.wrap_litellm(litellm)``.

LiteLLM answers in the OpenAI format for every provider, so the OpenAI
readers apply; the provider and LiteLLM's cost come from its hidden params.
"""

from __future__ import annotations

from typing import Any, Dict

from ._base import Endpoint, Provider
from ._read import get
from .openai import ChatAccumulator, _prepare_stream, read_chat_completion

__all__ = ["PROVIDER", "read_model_response"]


def read_model_response(response: Any) -> Dict[str, Any]:
    fields = dict(read_chat_completion(response))
    hidden = getattr(response, "_hidden_params", None) or {}
    fields["provider"] = hidden.get("custom_llm_provider") or "litellm"
    cost = hidden.get("response_cost")
    if cost is not None:
        fields.setdefault("attributes", {})["gen_ai.usage.cost"] = cost
    fields.setdefault("response_id", get(response, "id"))
    return fields


class StreamAccumulator(ChatAccumulator):
    def fields(self) -> Dict[str, Any]:
        return {**super().fields(), "provider": "litellm"}


# LiteLLM answers in the OpenAI chat format: the backend reads it as such.
_COMPLETION = Endpoint("chat", "chat.completions.create",
                       ("messages", "model", "tools", "tool_choice", "functions", "function_call"),
                       read_model_response, StreamAccumulator)
PROVIDER = Provider("litellm", {("completion",): _COMPLETION, ("acompletion",): _COMPLETION},
                    prepare_stream=_prepare_stream)
