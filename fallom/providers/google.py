"""Google: google-genai ``Client`` (sync and ``aio``) and google-generativeai models."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Tuple

from fallom.providers._base import Accumulator, Endpoint, Provider, request_attributes
from fallom.providers._read import compact, get, items

__all__ = ["GENERATIVE_MODEL", "PROVIDER", "read_generate_content"]


def _parts(response: Any) -> Tuple[List[str], List[Dict[str, Any]]]:
    texts: List[str] = []
    calls: List[Dict[str, Any]] = []
    candidates = items(response, "candidates")
    for part in items(candidates[0], "content", "parts") if candidates else []:
        if get(part, "text"):
            texts.append(get(part, "text"))
        call = get(part, "function_call")
        if get(call, "name"):  # protobuf messages default to an empty call
            calls.append({"name": get(call, "name"), "arguments": _plain(get(call, "args"))})
    return texts, calls


def _plain(value: Any) -> Any:
    try:
        return dict(value) if value is not None else None
    except (TypeError, ValueError):
        return value


def _finish(response: Any) -> Any:
    reasons = [get(c, "finish_reason") for c in items(response, "candidates")]
    named = [getattr(r, "name", r) for r in reasons if r is not None]
    return [str(r) for r in named] or None


def _raw(text: str, calls: List[Dict[str, Any]], response: Any) -> Dict[str, Any]:
    """``fallom.raw.response`` as the reference wrappers send it."""
    finish = _finish(response)
    raw: Dict[str, Any] = {"text": text, "candidates": len(items(response, "candidates")),
                           "finishReason": finish[0] if finish else None}
    if calls:
        raw["toolCalls"] = calls
    return raw


def _usage(usage: Any) -> Any:
    if usage is None:
        return None
    names = ("prompt_token_count", "candidates_token_count", "total_token_count",
             "cached_content_token_count", "thoughts_token_count")
    return {name: get(usage, name) for name in names if get(usage, name) is not None}


def read_generate_content(response: Any) -> Dict[str, Any]:
    texts, calls = _parts(response)
    usage = get(response, "usage_metadata")
    text = "".join(texts)
    return compact({
        "provider": "google",
        "model": get(response, "model_version"),
        "prompt_tokens": get(usage, "prompt_token_count"),
        "completion_tokens": get(usage, "candidates_token_count"),
        "total_tokens": get(usage, "total_token_count"),
        "finish_reason": _finish(response),
        "response_id": get(response, "response_id"),
        "output": {"content": text, "tool_calls": calls} if calls else text,
        "raw_response": _raw(text, calls, response),
        "raw_usage": _usage(usage),
        "attributes": {"gen_ai.usage.cached_tokens": get(usage, "cached_content_token_count"),
                       "gen_ai.usage.reasoning_tokens": get(usage, "thoughts_token_count")},
    })


class ContentAccumulator(Accumulator):
    """Streamed ``GenerateContentResponse`` chunks; the last one carries the usage."""

    def __init__(self) -> None:
        self.texts: List[str] = []
        self.calls: List[Dict[str, Any]] = []
        self.last: Any = None

    def add(self, chunk: Any) -> bool:
        self.last = chunk
        texts, calls = _parts(chunk)
        self.texts += texts
        self.calls += calls
        return bool(texts or calls)

    def fields(self) -> Dict[str, Any]:
        fields = read_generate_content(self.last) if self.last is not None else {}
        text = "".join(self.texts)
        fields["output"] = {"content": text, "tool_calls": self.calls} if self.calls else text
        fields["raw_response"] = _raw(text, self.calls, self.last)
        return fields


def _request_attributes_with_config(kwargs: Mapping[str, Any]) -> Dict[str, Any]:
    config = kwargs.get("config") or kwargs.get("generation_config")
    return request_attributes(kwargs, config)


_REQUEST = ("contents", "model")
_GENERATE = Endpoint("generate_content", "generateContent", _REQUEST, read_generate_content,
                     ContentAccumulator)
_STREAM = Endpoint("generate_content", "generateContent", _REQUEST, read_generate_content,
                   ContentAccumulator, always_streams=True)

PROVIDER = Provider("google", {
    ("models", "generate_content"): _GENERATE,
    ("models", "generate_content_stream"): _STREAM,
    ("aio", "models", "generate_content"): _GENERATE,
    ("aio", "models", "generate_content_stream"): _STREAM,
}, request_attributes=_request_attributes_with_config)

# google-generativeai: ``GenerativeModel.generate_content(contents, stream=False)``
GENERATIVE_MODEL = Provider("google", {
    ("generate_content",): _GENERATE,
    ("generate_content_async",): _GENERATE,
}, request_attributes=_request_attributes_with_config)
