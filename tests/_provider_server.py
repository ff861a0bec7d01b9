"""A local server speaking the OpenAI, Anthropic and Google GenAI wire formats.

JSON responses and server-sent events, with a configurable pause before the
first content chunk (to check time to first token) and injectable errors.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ._http import LoopbackServer, send_json

TEXT = ["Hel", "lo"]
USAGE_IN, USAGE_OUT = 9, 2


class ProviderServer(LoopbackServer):
    def __init__(self) -> None:
        self.first_chunk_delay = 0.0
        self.error: Optional[Tuple[int, Dict[str, Any]]] = None
        self.reject_stream_options = False  # answer 400 to it, as Databricks does
        self.requests: List[Dict[str, Any]] = []
        self.lock = threading.Lock()
        super().__init__()

    def on_post(self, handler: BaseHTTPRequestHandler) -> None:
        self._handle(handler)

    # -- dispatch --------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        body = json.loads(h.rfile.read(int(h.headers.get("Content-Length") or 0)) or b"{}")
        with self.lock:
            self.requests.append({"path": h.path, "body": body})
            error, self.error = self.error, None
        if error is None and self.reject_stream_options and "stream_options" in body:
            error = (400, {"error": {"message": "Unrecognized request argument: stream_options"}})
        if error is not None:
            self._json(h, error[1], error[0])
            return
        path = h.path.split("?")[0]
        stream = body.get("stream") is True or "streamGenerateContent" in path
        route = {
            "/v1/chat/completions": (openai_chat, openai_chat_events),
            "/v1/completions": (openai_completion, openai_completion_events),
            "/v1/responses": (openai_response, openai_response_events),
            "/v1/embeddings": (openai_embeddings, None),
            "/v1/messages": (anthropic_message, anthropic_events),
        }.get(path)
        if route is None and path.startswith(("/v1beta/models/", "/v1/models/")):
            route = (google_response, google_events)
        if route is None:
            self._json(h, {"error": {"message": f"no route {path}"}}, 404)
        elif "streamGenerateContent" in path and "alt=sse" not in h.path:
            self._json_array(h, [data for name, data in google_events(body) if name != "pause"])
        elif stream and route[1] is not None:
            self._sse(h, route[1](body))
        else:
            self._json(h, route[0](body))

    def _json(self, h: BaseHTTPRequestHandler, payload: Any, status: int = 200) -> None:
        send_json(h, status, payload)

    def _json_array(self, h: BaseHTTPRequestHandler, items: List[Any]) -> None:
        """google-generativeai's REST streaming: one JSON array, sent piece by piece."""
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(b"[")
        h.wfile.flush()
        time.sleep(self.first_chunk_delay)
        h.wfile.write(b",".join(json.dumps(item).encode() for item in items) + b"]")
        h.close_connection = True

    def _sse(self, h: BaseHTTPRequestHandler, events: Iterator[Tuple[Optional[str], Any]]) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Connection", "close")
        h.end_headers()
        for name, data in events:
            if name == "pause":
                h.wfile.flush()
                time.sleep(self.first_chunk_delay)
                continue
            text = data if isinstance(data, str) else json.dumps(data)
            h.wfile.write((f"event: {name}\n" if name else "").encode() + f"data: {text}\n\n".encode())
            h.wfile.flush()
        h.close_connection = True


def _tool(body: Dict[str, Any]) -> bool:
    return bool(body.get("tools"))


# -- OpenAI ---------------------------------------------------------------------
def _openai_usage() -> Dict[str, Any]:
    return {"prompt_tokens": USAGE_IN, "completion_tokens": USAGE_OUT,
            "total_tokens": USAGE_IN + USAGE_OUT,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 1}}


def openai_chat(body: Dict[str, Any]) -> Dict[str, Any]:
    message: Dict[str, Any] = {"role": "assistant", "content": "".join(TEXT)}
    if _tool(body):
        message = {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]}
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1,
            "model": body.get("model", "") + "-2024-07-18", "usage": _openai_usage(),
            "choices": [{"index": 0, "message": message,
                         "finish_reason": "tool_calls" if _tool(body) else "stop"}]}


def _chunk(body: Dict[str, Any], delta: Dict[str, Any], finish: Optional[str] = None) -> Any:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
            "model": body.get("model", "") + "-2024-07-18",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def openai_chat_events(body: Dict[str, Any]) -> Iterator[Tuple[Optional[str], Any]]:
    yield None, _chunk(body, {"role": "assistant", "content": ""})
    yield "pause", None
    if _tool(body):
        yield None, _chunk(body, {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                  "function": {"name": "get_weather",
                                                               "arguments": '{"city":'}}]})
        yield None, _chunk(body, {"tool_calls": [{"index": 0,
                                                  "function": {"arguments": '"Paris"}'}}]})
    else:
        for piece in TEXT:
            yield None, _chunk(body, {"content": piece})
    yield None, _chunk(body, {}, "tool_calls" if _tool(body) else "stop")
    if (body.get("stream_options") or {}).get("include_usage"):
        yield None, {**_chunk(body, {}), "choices": [], "usage": _openai_usage()}
    yield None, "[DONE]"


def openai_completion(body: Dict[str, Any]) -> Dict[str, Any]:
    return {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "text": "".join(TEXT), "finish_reason": "stop",
                         "logprobs": None}], "usage": _openai_usage()}


def openai_completion_events(body: Dict[str, Any]) -> Iterator[Tuple[Optional[str], Any]]:
    yield "pause", None
    for piece in TEXT:
        yield None, {"id": "cmpl-1", "object": "text_completion", "created": 1,
                     "model": body["model"], "choices": [{"index": 0, "text": piece,
                                                          "finish_reason": None}]}
    if (body.get("stream_options") or {}).get("include_usage"):
        yield None, {"id": "cmpl-1", "object": "text_completion", "created": 1,
                     "model": body["model"], "choices": [], "usage": _openai_usage()}
    yield None, "[DONE]"


def openai_response(body: Dict[str, Any]) -> Dict[str, Any]:
    return {"id": "resp_1", "object": "response", "created_at": 1, "model": body["model"],
            "status": "completed", "parallel_tool_calls": True, "tool_choice": "auto",
            "tools": [], "output": [{"type": "message", "id": "msg_1", "status": "completed",
                                     "role": "assistant", "content": [
                                         {"type": "output_text", "text": "".join(TEXT),
                                          "annotations": []}]}],
            "usage": {"input_tokens": USAGE_IN, "output_tokens": USAGE_OUT,
                      "total_tokens": USAGE_IN + USAGE_OUT,
                      "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens_details": {"reasoning_tokens": 0}}}


def openai_response_events(body: Dict[str, Any]) -> Iterator[Tuple[Optional[str], Any]]:
    final = openai_response(body)
    yield "response.created", {"type": "response.created", "sequence_number": 0,
                               "response": {**final, "status": "in_progress", "output": []}}
    yield "pause", None
    for i, piece in enumerate(TEXT):
        yield "response.output_text.delta", {
            "type": "response.output_text.delta", "sequence_number": i + 1, "item_id": "msg_1",
            "output_index": 0, "content_index": 0, "delta": piece, "logprobs": []}
    yield "response.completed", {"type": "response.completed", "sequence_number": 9,
                                 "response": final}


def openai_embeddings(body: Dict[str, Any]) -> Dict[str, Any]:
    return {"object": "list", "model": body["model"],
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
            "usage": {"prompt_tokens": 3, "total_tokens": 3}}


# -- Anthropic ------------------------------------------------------------------
def anthropic_message(body: Dict[str, Any]) -> Dict[str, Any]:
    content: List[Dict[str, Any]] = [{"type": "text", "text": "".join(TEXT)}]
    if _tool(body):
        content = [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                    "input": {"city": "Paris"}}]
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
            "content": content, "stop_reason": "tool_use" if _tool(body) else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": USAGE_IN, "output_tokens": USAGE_OUT}}


def anthropic_events(body: Dict[str, Any]) -> Iterator[Tuple[Optional[str], Any]]:
    start = {**anthropic_message(body), "content": [], "stop_reason": None,
             "usage": {"input_tokens": USAGE_IN, "output_tokens": 1}}
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    yield "pause", None
    if _tool(body):
        yield "content_block_start", {"type": "content_block_start", "index": 0, "content_block":
                                      {"type": "tool_use", "id": "toolu_1",
                                       "name": "get_weather", "input": {}}}
        yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
            "type": "input_json_delta", "partial_json": '{"city": "Paris"}'}}
    else:
        yield "content_block_start", {"type": "content_block_start", "index": 0,
                                      "content_block": {"type": "text", "text": ""}}
        for piece in TEXT:
            yield "content_block_delta", {"type": "content_block_delta", "index": 0,
                                          "delta": {"type": "text_delta", "text": piece}}
    yield "content_block_stop", {"type": "content_block_stop", "index": 0}
    yield "message_delta", {"type": "message_delta",
                            "delta": {"stop_reason": "tool_use" if _tool(body) else "end_turn",
                                      "stop_sequence": None},
                            "usage": {"output_tokens": USAGE_OUT}}
    yield "message_stop", {"type": "message_stop"}


# -- Google GenAI -----------------------------------------------------------------
def _google(parts: List[Dict[str, Any]], finish: Optional[str], usage: bool) -> Dict[str, Any]:
    response: Dict[str, Any] = {
        "candidates": [{"content": {"role": "model", "parts": parts}, "index": 0,
                        **({"finishReason": finish} if finish else {})}],
        "modelVersion": "gemini-2.0-flash-001", "responseId": "g-1"}
    if usage:
        response["usageMetadata"] = {"promptTokenCount": USAGE_IN,
                                     "candidatesTokenCount": USAGE_OUT,
                                     "totalTokenCount": USAGE_IN + USAGE_OUT}
    return response


def google_response(body: Dict[str, Any]) -> Dict[str, Any]:
    return _google([{"text": "".join(TEXT)}], "STOP", True)


def google_events(body: Dict[str, Any]) -> Iterator[Tuple[Optional[str], Any]]:
    yield "pause", None
    for i, piece in enumerate(TEXT):
        last = i == len(TEXT) - 1
        yield None, _google([{"text": piece}], "STOP" if last else None, last)
