"""The models ``compare_models`` runs: by name at the judge's endpoint, or your callable.

Each call is an ``llm`` span (model, tokens, cost; messages and answer only with
``capture_content`` on). A callable that raises or answers in the wrong shape
fails that item for that model, with a message naming the model and the problem.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Dict, List, Mapping, NamedTuple, Optional

from fallom.evals._chat import Usage, as_number, message_content, usage_of
from fallom.evals._http import RequestFailed, encode, request_json
from fallom.evals._settings import Judge
from fallom.evals._types import Model, ModelCallable, ModelResponse
from fallom.protocol._fields import token_count
from fallom.tracing._api import span

__all__ = ["Generation", "ModelCallError", "create_custom_model", "create_model_from_callable",
           "create_openai_model", "generate", "messages_for"]

_MODEL_TIMEOUT_S = 120.0  # 0.2.7's

Messages = List[Dict[str, str]]


class ModelCallError(Exception):
    """A model gave no output for an item; the message names the model and why."""


class Generation(NamedTuple):
    """One model's output for one item, with what it cost."""

    content: str
    usage: Usage
    latency_ms: int


def messages_for(system_message: Optional[str], input_text: str) -> Messages:
    """0.2.7's messages: the system message (when there is one), then the input."""
    messages = [{"role": "system", "content": system_message}] if system_message else []
    messages.append({"role": "user", "content": input_text})
    return messages


def generate(model: Model, messages: Messages, endpoint: Judge,
             model_kwargs: Mapping[str, Any]) -> Generation:
    """Call ``model`` on ``messages`` inside an ``llm`` span.

    Args:
        model: a callable model, or one called by name at ``endpoint``.
        messages: the chat messages.
        endpoint: the OpenAI-compatible server of models given by name.
        model_kwargs: extra request fields for models given by name.

    Returns:
        Its output, tokens, cost and latency.

    Raises:
        ModelCallError: it raised, or answered without a ``content`` string.
    """
    with span("evals.model", kind="llm", attributes={"eval.model": model.name}) as current:
        current.set_model(model.name)
        current.set_input(messages)
        start = time.perf_counter()
        response = _call(model, messages, endpoint, model_kwargs)
        latency_ms = int((time.perf_counter() - start) * 1000)
        content, usage = _read(model.name, response)
        current.record_usage(usage.tokens_in, usage.tokens_out)
        if usage.cost is not None:
            current.set_attribute("gen_ai.usage.cost", usage.cost)
        current.set_output(content)
        return Generation(content, usage, latency_ms)


def _call(model: Model, messages: Messages, endpoint: Judge,
          model_kwargs: Mapping[str, Any]) -> Any:
    if model.call_fn is None:
        payload = {"model": model.name, "messages": messages, **model_kwargs}
        return _chat(endpoint.chat_url, payload, endpoint.headers(), f"model {model.name!r}")
    try:
        return model.call_fn(messages)
    except ModelCallError:
        raise
    except Exception as exc:
        raise ModelCallError(f"model {model.name!r} raised {type(exc).__name__}: {exc}") from exc


def _chat(url: str, payload: Dict[str, Any], headers: Mapping[str, str],
          what: str) -> ModelResponse:
    """Call an OpenAI-compatible chat endpoint; answer in the ModelResponse shape."""
    try:
        data = request_json("POST", url, what=what, headers=headers, body=encode(payload),
                            timeout=_MODEL_TIMEOUT_S)
        content = message_content(data)
    except RequestFailed as exc:
        raise ModelCallError(str(exc)) from None
    except ValueError as exc:
        raise ModelCallError(f"{what} at {url}: {exc}") from None
    usage = usage_of(data)
    return {"content": content, "tokens_in": usage.tokens_in, "tokens_out": usage.tokens_out,
            "cost": usage.cost}


def _read(name: str, response: Any) -> tuple[str, Usage]:
    """A ModelResponse's content and usage, checked."""
    if not isinstance(response, Mapping) or not isinstance(response.get("content"), str):
        got = type(response).__name__ if not isinstance(response, Mapping) \
            else f"a dict whose content is {type(response.get('content')).__name__}"
        raise ModelCallError(f"model {name!r} returned {got}; it must return a dict with a "
                          "'content' string")
    return response["content"], Usage(token_count(response.get("tokens_in")),
                                      token_count(response.get("tokens_out")),
                                      as_number(response.get("cost")))


def create_openai_model(model_id: str, name: Optional[str] = None,
                        api_key: Optional[str] = None, base_url: Optional[str] = None,
                        temperature: Optional[float] = None,
                        max_tokens: Optional[int] = None) -> Model:
    """A model called through the ``openai`` package (a fine-tune, Azure, a proxy).

    Args:
        model_id: the model (``"gpt-4o"``, ``"ft:gpt-4o-2024-08-06:org::id"``).
        name: its name in the results; None: ``model_id``.
        api_key: None: ``OPENAI_API_KEY``.
        base_url: the API's base URL; None: OpenAI's.
        temperature: sent when given.
        max_tokens: sent when given.

    Returns:
        A :class:`Model` for ``compare_models``; the client is made on its first call,
        which raises ImportError (recorded as that item's error) without ``openai``.
    """
    extra: Dict[str, Any] = {}
    if temperature is not None:
        extra["temperature"] = temperature
    if max_tokens is not None:
        extra["max_tokens"] = max_tokens
    made: List[Any] = []
    lock = threading.Lock()

    def client() -> Any:
        with lock:
            if not made:
                try:
                    from openai import OpenAI
                except ImportError:
                    raise ImportError("OpenAI package required for create_openai_model(). "
                                      "Install with: pip install openai") from None
                made.append(OpenAI(api_key=api_key or os.environ.get("OPENAI_API_KEY"),
                                   base_url=base_url))
            return made[0]

    def call_fn(messages: Messages) -> ModelResponse:
        response = client().chat.completions.create(model=model_id, messages=messages, **extra)
        usage = response.usage
        return {"content": response.choices[0].message.content or "",
                "tokens_in": usage.prompt_tokens if usage else None,
                "tokens_out": usage.completion_tokens if usage else None, "cost": None}

    return Model(name=name or model_id, call_fn=call_fn)


def create_custom_model(name: str, endpoint: str, api_key: Optional[str] = None,
                        headers: Optional[Dict[str, str]] = None, model_field: str = "model",
                        model_value: Optional[str] = None, **kwargs: Any) -> Model:
    """A model behind any OpenAI-compatible chat-completions URL (vLLM, Ollama, LM Studio).

    Args:
        name: its name in the results.
        endpoint: the full chat-completions URL.
        api_key: sent as a bearer token when given.
        headers: more headers for each request.
        model_field: the request's field naming the model (default ``"model"``).
        model_value: that field's value; None: ``name``.
        **kwargs: more fields of every request (``temperature=0``...).

    Returns:
        A :class:`Model` for ``compare_models``; 429 and 5xx answers are retried.
    """
    request_headers = {"Content-Type": "application/json"}
    if api_key:
        request_headers["Authorization"] = f"Bearer {api_key}"
    request_headers.update(headers or {})

    def call_fn(messages: Messages) -> ModelResponse:
        payload = {model_field: model_value or name, "messages": messages, **kwargs}
        return _chat(endpoint, payload, request_headers, f"model {name!r}")

    return Model(name=name, call_fn=call_fn)


def create_model_from_callable(name: str, call_fn: ModelCallable) -> Model:
    """A model that is your own function.

    Args:
        name: its name in the results.
        call_fn: takes the messages (``[{"role": ..., "content": ...}]``) and returns
            ``{"content": str, "tokens_in"?: int, "tokens_out"?: int, "cost"?: float}``.

    Returns:
        A :class:`Model` for ``compare_models``.
    """
    return Model(name=name, call_fn=call_fn)
