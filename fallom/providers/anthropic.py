"""Anthropic: ``messages.create`` (plain and ``stream=True``) and ``messages.stream``."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Tuple

from fallom.providers._base import Accumulator, Endpoint, Provider
from fallom.providers._read import compact, get, items

__all__ = ["PROVIDER", "read_message"]


def _output(texts: List[str], calls: List[Dict[str, Any]]) -> Any:
    text = "".join(texts)
    return {"content": text, "tool_calls": calls} if calls else text


def _usage(usage: Any) -> Dict[str, Any]:
    prompt, completion = get(usage, "input_tokens"), get(usage, "output_tokens")
    total = prompt + completion if prompt is not None and completion is not None else None
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}


def _raw(texts: List[str], calls: List[Dict[str, Any]], stop: Any, response_id: Any,
         model: Any, content: Any) -> Dict[str, Any]:
    """``fallom.raw.response`` as the reference wrappers send it."""
    return {"text": "".join(texts), "finishReason": stop, "responseId": response_id,
            "model": model, "toolCalls": calls, "content": content}


def read_message(message: Any) -> Dict[str, Any]:
    texts, calls = [], []
    blocks = items(message, "content")
    for block in blocks:
        if get(block, "type") == "text":
            texts.append(get(block, "text") or "")
        elif get(block, "type") == "tool_use":
            calls.append({"id": get(block, "id"), "name": get(block, "name"),
                          "arguments": get(block, "input")})
    usage = get(message, "usage")
    return compact({
        "provider": "anthropic",
        "model": get(message, "model"),
        **_usage(usage),
        "finish_reason": [get(message, "stop_reason")] if get(message, "stop_reason") else None,
        "response_id": get(message, "id"),
        "output": _output(texts, calls),
        "raw_response": _raw(texts, calls, get(message, "stop_reason"), get(message, "id"),
                             get(message, "model"), blocks),
        "raw_usage": usage,
        "attributes": {"gen_ai.usage.cache_read_input_tokens":
                       get(usage, "cache_read_input_tokens")},
    })


class MessageAccumulator(Accumulator):
    """Raw stream events: message_start, content blocks and deltas, message_delta."""

    def __init__(self) -> None:
        self.texts: List[str] = []
        self.calls: Dict[int, Dict[str, Any]] = {}
        self.model = self.response_id = self.stop = None
        self.prompt_tokens = self.completion_tokens = None

    def add(self, event: Any) -> bool:
        kind = get(event, "type")
        if kind == "message_start":
            message = get(event, "message")
            self.model, self.response_id = get(message, "model"), get(message, "id")
            self.prompt_tokens = get(message, "usage", "input_tokens")
            self.completion_tokens = get(message, "usage", "output_tokens")
        elif kind == "content_block_start" and get(event, "content_block", "type") == "tool_use":
            block = get(event, "content_block")
            self.calls[get(event, "index") or 0] = {"id": get(block, "id"),
                                                    "name": get(block, "name"), "arguments": ""}
        elif kind == "content_block_delta":
            delta = get(event, "delta")
            if get(delta, "type") == "text_delta":
                self.texts.append(get(delta, "text") or "")
                return bool(get(delta, "text"))
            if get(delta, "type") == "input_json_delta":
                slot = self.calls.get(get(event, "index") or 0)
                if slot is not None:
                    slot["arguments"] += get(delta, "partial_json") or ""
                return True
        elif kind == "message_delta":
            self.stop = get(event, "delta", "stop_reason") or self.stop
            output = get(event, "usage", "output_tokens")
            self.completion_tokens = output if output is not None else self.completion_tokens
            prompt = get(event, "usage", "input_tokens")
            self.prompt_tokens = prompt if prompt is not None else self.prompt_tokens
        return False

    def fields(self) -> Dict[str, Any]:
        usage = {"input_tokens": self.prompt_tokens, "output_tokens": self.completion_tokens}
        calls = [self.calls[i] for i in sorted(self.calls)]
        content = ([{"type": "text", "text": "".join(self.texts)}] if self.texts else []) + [
            {"type": "tool_use", "id": c["id"], "name": c["name"]} for c in calls]
        return compact({
            "provider": "anthropic",
            "model": self.model,
            **_usage(usage),
            "finish_reason": [self.stop] if self.stop else None,
            "response_id": self.response_id,
            "output": _output(self.texts, calls),
            "raw_response": _raw(self.texts, calls, self.stop, self.response_id, self.model,
                                 content),
            "raw_usage": compact(usage),
        })


_REQUEST = ("messages", "system", "model", "tools", "tool_choice")
_MESSAGES = Endpoint("chat", "messages.create", _REQUEST, read_message, MessageAccumulator)
ENDPOINTS: Mapping[Tuple[str, ...], Endpoint] = {
    ("messages", "create"): _MESSAGES,
    ("messages", "stream"): Endpoint("chat", "messages.create", _REQUEST, read_message,
                                     MessageAccumulator, always_streams=True),
    ("beta", "messages", "create"): _MESSAGES,
}

PROVIDER = Provider("anthropic", ENDPOINTS)
