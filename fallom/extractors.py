"""Read model, usage and output out of whatever an LLM call returned.

An extractor is a callable ``(result) -> dict`` of record fields: ``model``,
``provider``, ``prompt_tokens``, ``completion_tokens``, ``total_tokens``,
``output``, ``finish_reason``, ``response_id`` and ``attributes``; provider
readers add ``raw_response`` and ``raw_usage``, the shapes the other Fallom
SDKs send in ``fallom.raw.response`` and ``fallom.raw.usage``. They are
looked up by the result's type, so an unknown result costs one dict lookup;
provider SDKs are never imported here.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from fallom.providers import anthropic, google, litellm, openai
from fallom.tracing import _extract
from fallom.tracing._extract import Extractor, apply, extract, register, register_builtins

__all__ = ["Extractor", "apply", "extract", "lookup", "register"]


def lookup(result_type: type) -> Optional[Extractor]:
    """The extractor fallom uses for results of ``result_type``.

    Tracing itself calls the registry's cache directly (a C method, no Python frame
    per traced call); this is that lookup with a signature and a docstring.

    Args:
        result_type: the type of a result; its bases are searched too.

    Returns:
        The extractor registered for it or its nearest base, or None.

    Raises:
        TypeError: ``result_type`` is not a type.
    """
    if not isinstance(result_type, type):
        raise TypeError(f"result_type must be a type, got {result_type!r}")
    return _extract.lookup(result_type)


def _read_dict(result: Any) -> Optional[Mapping[str, Any]]:
    """Plain dicts shaped like the OpenAI or Anthropic JSON responses."""
    kind = result.get("object")
    if kind == "chat.completion":
        return openai.read_chat_completion(result)
    if kind == "text_completion":
        return openai.read_completion(result)
    if kind == "response":
        return openai.read_response(result)
    if kind == "list" and isinstance(result.get("data"), list) and "usage" in result:
        return openai.read_embeddings(result)
    if result.get("type") == "message" and isinstance(result.get("content"), list):
        return anthropic.read_message(result)
    return None


def _register_builtins() -> None:
    known: Dict[str, Extractor] = {
        "openai.types.chat.chat_completion.ChatCompletion": openai.read_chat_completion,
        "openai.types.completion.Completion": openai.read_completion,
        "openai.types.responses.response.Response": openai.read_response,
        "openai.types.create_embedding_response.CreateEmbeddingResponse":
            openai.read_embeddings,
        "anthropic.types.message.Message": anthropic.read_message,
        "google.genai.types.GenerateContentResponse": google.read_generate_content,
        "google.generativeai.types.generation_types.GenerateContentResponse":
            google.read_generate_content,
        "litellm.types.utils.ModelResponse": litellm.read_model_response,
    }
    register_builtins(known, _read_dict)


_register_builtins()
