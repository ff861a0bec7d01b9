"""OpenAI (and any OpenAI-compatible server): chat, responses, embeddings, completions."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

from fallom.protocol import _names as attr
from fallom.providers._base import Accumulator, Endpoint, Provider
from fallom.providers._read import compact, get, items
from fallom.tracing import _runtime

__all__ = ["PROVIDER", "read_chat_completion", "read_completion", "read_embeddings",
           "read_response"]


def _usage(usage: Any, prompt: str, completion: str) -> Dict[str, Any]:
    return {
        "prompt_tokens": get(usage, prompt),
        "completion_tokens": get(usage, completion),
        "total_tokens": get(usage, "total_tokens"),
    }


def _tool_call(call: Any) -> Dict[str, Any]:
    return {"id": get(call, "id"), "name": get(call, "function", "name"),
            "arguments": get(call, "function", "arguments")}


def _chat_fields(model: Any, usage: Any, finish: List[Any], response_id: Any, content: Any,
                 tool_calls: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Record fields of a chat completion, whole or accumulated from a stream."""
    raw = {"text": content, "finishReason": finish[0] if finish else None,
           "responseId": response_id, "model": model}
    if tool_calls:
        raw["toolCalls"] = [{"id": c["id"], "type": "function",
                             "function": {"name": c["name"], "arguments": c["arguments"]}}
                            for c in tool_calls]
    return compact({
        "provider": "openai",
        "model": model,
        **_usage(usage, "prompt_tokens", "completion_tokens"),
        "finish_reason": finish or None,
        "response_id": response_id,
        "output": {"content": content, "tool_calls": tool_calls} if tool_calls else content,
        "raw_response": raw,
        "raw_usage": usage,
        "attributes": {
            attr.CACHED_TOKENS: get(usage, "prompt_tokens_details", "cached_tokens"),
            attr.REASONING_TOKENS: get(usage, "completion_tokens_details", "reasoning_tokens"),
        },
    })


def read_chat_completion(response: Any) -> Dict[str, Any]:
    choices = items(response, "choices")
    message = get(choices[0], "message") if choices else None
    return _chat_fields(get(response, "model"), get(response, "usage"),
                        [get(c, "finish_reason") for c in choices], get(response, "id"),
                        get(message, "content"),
                        [_tool_call(c) for c in items(message, "tool_calls")])


def read_completion(response: Any) -> Dict[str, Any]:
    choices = items(response, "choices")
    return compact({
        "provider": "openai",
        "model": get(response, "model"),
        **_usage(get(response, "usage"), "prompt_tokens", "completion_tokens"),
        "finish_reason": [get(c, "finish_reason") for c in choices] or None,
        "response_id": get(response, "id"),
        "output": get(choices[0], "text") if choices else None,
        "raw_response": {"text": get(choices[0], "text") if choices else None,
                         "finishReason": get(choices[0], "finish_reason") if choices else None,
                         "responseId": get(response, "id"), "model": get(response, "model")},
        "raw_usage": get(response, "usage"),
    })


def read_response(response: Any) -> Dict[str, Any]:
    """The Responses API: output items of type message (text) and function_call."""
    texts: List[str] = []
    calls: List[Dict[str, Any]] = []
    for item in items(response, "output"):
        if get(item, "type") == "message":
            texts += [get(part, "text") or "" for part in items(item, "content")
                      if get(part, "type") == "output_text"]
        elif get(item, "type") == "function_call":
            calls.append({"id": get(item, "call_id"), "name": get(item, "name"),
                          "arguments": get(item, "arguments")})
    usage = get(response, "usage")
    text = "".join(texts)
    raw: Dict[str, Any] = {"responseId": get(response, "id"), "model": get(response, "model"),
                           "status": get(response, "status"), "text": text,
                           "output": [_output_item(item) for item in items(response, "output")]}
    if calls:
        raw["toolCalls"] = calls
    return compact({
        "provider": "openai",
        "model": get(response, "model"),
        **_usage(usage, "input_tokens", "output_tokens"),
        "response_id": get(response, "id"),
        "finish_reason": [get(response, "status")] if get(response, "status") else None,
        "output": {"content": text, "tool_calls": calls} if calls else text,
        "raw_response": raw,
        "raw_usage": _responses_usage(usage),
        "attributes": {
            attr.CACHED_TOKENS: get(usage, "input_tokens_details", "cached_tokens"),
            attr.REASONING_TOKENS: get(usage, "output_tokens_details", "reasoning_tokens"),
        },
    })


def _output_item(item: Any) -> Dict[str, Any]:
    """One Responses API output item as 0.2.x sends it in ``fallom.raw.response.output``:
    the only place it sent function calls, so backends reading 0.2.x records find them."""
    out: Dict[str, Any] = {"type": get(item, "type")}
    if get(item, "content") is not None:
        out["content"] = [{"type": "text", "text": get(part, "text")}
                          if get(part, "text") is not None else {"type": get(part, "type")}
                          for part in items(item, "content")]
    for key in ("name", "arguments", "call_id"):
        if get(item, key) is not None:
            out[key] = get(item, key)
    return out


def _responses_usage(usage: Any) -> Optional[Dict[str, Any]]:
    """The Responses API's usage with 0.2.x's names beside its own (``prompt_tokens`` is
    ``input_tokens``...), so a backend reading either finds the counts."""
    if usage is None:
        return None
    names = ("input_tokens", "output_tokens", "total_tokens", "input_tokens_details",
             "output_tokens_details")
    raw = {name: get(usage, name) for name in names if get(usage, name) is not None}
    raw.update(compact({"prompt_tokens": get(usage, "input_tokens"),
                        "completion_tokens": get(usage, "output_tokens")}))
    return raw


def read_embeddings(response: Any) -> Dict[str, Any]:
    data = items(response, "data")
    return compact({
        "provider": "openai",
        "model": get(response, "model"),
        "prompt_tokens": get(response, "usage", "prompt_tokens"),
        "total_tokens": get(response, "usage", "total_tokens"),
        "output": {"embeddings": len(data),
                   "dimensions": len(get(data[0], "embedding") or []) if data else 0},
        "raw_response": {"model": get(response, "model"), "embeddings": len(data),
                         "dimensions": len(get(data[0], "embedding") or []) if data else 0},
        "raw_usage": get(response, "usage"),
    })


class ChatAccumulator(Accumulator):
    """Chat completion chunks: text deltas, tool-call fragments, the usage chunk."""

    def __init__(self) -> None:
        self.text: List[str] = []
        self.calls: Dict[int, Dict[str, Any]] = {}
        self.model = self.response_id = self.usage = None
        self.finish: List[Any] = []

    def add(self, chunk: Any) -> bool:
        self.model = get(chunk, "model") or self.model
        self.response_id = get(chunk, "id") or self.response_id
        if get(chunk, "usage") is not None:
            self.usage = get(chunk, "usage")
        content = False
        for choice in items(chunk, "choices"):
            delta = get(choice, "delta")
            text = get(delta, "content")
            if text:
                self.text.append(text)
                content = True
            for call in items(delta, "tool_calls"):
                slot = self.calls.setdefault(get(call, "index") or 0,
                                             {"id": None, "name": None, "arguments": ""})
                slot["id"] = get(call, "id") or slot["id"]
                slot["name"] = get(call, "function", "name") or slot["name"]
                slot["arguments"] += get(call, "function", "arguments") or ""
                content = True
            if get(choice, "finish_reason"):
                self.finish.append(get(choice, "finish_reason"))
        return content

    def hidden(self, chunk: Any) -> bool:
        return not items(chunk, "choices") and get(chunk, "usage") is not None

    def fields(self) -> Dict[str, Any]:
        return _chat_fields(self.model, self.usage, self.finish, self.response_id,
                            "".join(self.text), [self.calls[i] for i in sorted(self.calls)])


class CompletionAccumulator(ChatAccumulator):
    def add(self, chunk: Any) -> bool:
        self.model = get(chunk, "model") or self.model
        if get(chunk, "usage") is not None:
            self.usage = get(chunk, "usage")
        texts = [get(c, "text") for c in items(chunk, "choices") if get(c, "text")]
        self.text += texts
        return bool(texts)


class ResponsesAccumulator(Accumulator):
    """Responses API events: text deltas, then ``response.completed`` with everything."""

    def __init__(self) -> None:
        self.text: List[str] = []
        self.final: Dict[str, Any] = {}

    def add(self, chunk: Any) -> bool:
        kind = get(chunk, "type")
        if kind == "response.output_text.delta":
            self.text.append(get(chunk, "delta") or "")
            return bool(get(chunk, "delta"))
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            self.final = read_response(get(chunk, "response"))
        return bool(kind == "response.function_call_arguments.delta")

    def fields(self) -> Dict[str, Any]:
        text = "".join(self.text)
        return self.final or compact({"provider": "openai", "output": text,
                                      "raw_response": {"text": text}})


_AZURE_STREAM_USAGE = "2024-09-01"  # the first Azure OpenAI API version with stream_options


def accepts_stream_usage(resource: Any) -> bool:
    """Whether the server behind ``resource`` is known to take ``stream_options``.

    api.openai.com and Azure OpenAI from API version 2024-09-01 do; other
    OpenAI-compatible servers may answer 400 to it, so they are not asked
    (``init(openai_stream_usage=True)`` asks every server).
    """
    forced = _runtime.STATE.settings.openai_stream_usage
    if forced is not None:
        return forced
    client = getattr(resource, "_client", None)
    version = getattr(client, "_api_version", None)
    if version is not None:  # AzureOpenAI
        return isinstance(version, str) and version[:10] >= _AZURE_STREAM_USAGE
    return getattr(getattr(client, "base_url", None), "host", None) == "api.openai.com"


def _prepare_stream(endpoint: Endpoint, kwargs: Dict[str, Any],
                    resource: Any) -> Tuple[Dict[str, Any], bool]:
    """Ask for the usage chunk where that is safe and the user did not; it is then hidden."""
    if endpoint.operation in ("chat", "text_completion") and \
            kwargs.get("stream_options") is None and accepts_stream_usage(resource):
        return {**kwargs, "stream_options": {"include_usage": True}}, True
    return kwargs, False


_CHAT_REQUEST = ("messages", "model", "tools", "tool_choice", "functions", "function_call")
_CHAT = Endpoint("chat", "chat.completions.create", _CHAT_REQUEST, read_chat_completion,
                 ChatAccumulator)
ENDPOINTS: Mapping[Tuple[str, ...], Endpoint] = {
    ("chat", "completions", "create"): _CHAT,
    ("chat", "completions", "parse"): _CHAT,
    ("beta", "chat", "completions", "parse"): _CHAT,
    ("responses", "create"): Endpoint(
        "responses", "responses.create",
        ("input", "model", "instructions", "tools", "temperature", "max_output_tokens", "top_p",
         "store", "metadata"), read_response, ResponsesAccumulator),
    ("embeddings", "create"): Endpoint("embeddings", "embeddings.create", ("input", "model"),
                                       read_embeddings, kind="embedding"),
    ("completions", "create"): Endpoint("text_completion", "completions.create",
                                        ("prompt", "model"), read_completion,
                                        CompletionAccumulator),
}

PROVIDER = Provider("openai", ENDPOINTS, prepare_stream=_prepare_stream)
