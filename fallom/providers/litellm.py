"""LiteLLM: ``completion`` and ``acompletion``, through ``session.wrap_litellm(litellm)``.

LiteLLM answers in the OpenAI format for every provider, so the OpenAI
readers apply; the provider and LiteLLM's cost come from its hidden params.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

from fallom.providers._base import Endpoint, Provider
from fallom.providers._read import get, items
from fallom.providers.openai import ChatAccumulator, read_chat_completion
from fallom.tracing import _runtime

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
    def hidden(self, chunk: Any) -> bool:
        """The usage chunk fallom asked for: usage and nothing else. Older LiteLLM releases
        give it a choice with an empty delta, where OpenAI gives it no choice at all."""
        if get(chunk, "usage") is None:
            return False
        return all(not get(choice, "delta", "content") and not get(choice, "delta", "tool_calls")
                   and not get(choice, "finish_reason") for choice in items(chunk, "choices"))

    def fields(self) -> Dict[str, Any]:
        return {**super().fields(), "provider": "litellm"}


def _prepare_stream(endpoint: Endpoint, kwargs: Dict[str, Any],
                    resource: Any) -> Tuple[Dict[str, Any], bool]:
    """Ask for the usage chunk unless the user set ``stream_options``; it is then hidden.

    LiteLLM translates ``stream_options`` for each provider it routes to (Anthropic,
    Bedrock, Gemini, ...), so asking is safe whatever the model; only
    ``init(openai_stream_usage=False)`` turns it off.
    """
    if kwargs.get("stream_options") is None and \
            _runtime.STATE.settings.openai_stream_usage is not False:
        return {**kwargs, "stream_options": {"include_usage": True}}, True
    return kwargs, False


# LiteLLM answers in the OpenAI chat format: the backend reads it as such.
_COMPLETION = Endpoint("chat", "chat.completions.create",
                       ("messages", "model", "tools", "tool_choice", "functions", "function_call"),
                       read_model_response, StreamAccumulator)
PROVIDER = Provider("litellm", {("completion",): _COMPLETION, ("acompletion",): _COMPLETION},
                    prepare_stream=_prepare_stream)
