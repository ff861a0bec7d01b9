"""A LangChain callback handler: chains, LLM and chat-model calls, tools, retrievers.

Spans are keyed by LangChain's run ids and linked through ``parent_run_id``,
so parallel branches, ``batch`` and ``abatch`` keep their parents without
relying on the context; a root run takes the fallom span current when it
starts as its parent.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, List, Optional, Sequence
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from fallom.infra._fork import register
from fallom.infra._guard import report_internal_error
from fallom.protocol import _names as attr
from fallom.providers._read import get
from fallom.tracing import _extract, _runtime
from fallom.tracing._session import SessionContext
from fallom.tracing._span import Span

__all__ = ["FallomCallbackHandler"]

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool",
          "function": "function", "chat": "user"}


def _message(message: Any) -> Dict[str, Any]:
    out: Dict[str, Any] = {"role": _ROLES.get(getattr(message, "type", ""), "user"),
                           "content": getattr(message, "content", message)}
    calls = getattr(message, "tool_calls", None)
    if calls:
        out["tool_calls"] = [{"id": c.get("id"), "name": c.get("name"), "arguments": c.get("args")}
                             for c in calls]
    return out


def _name(serialized: Optional[Dict[str, Any]], kwargs: Dict[str, Any], default: str) -> str:
    if kwargs.get("name"):
        return str(kwargs["name"])
    serialized = serialized or {}
    if serialized.get("name"):
        return str(serialized["name"])
    ids = serialized.get("id")
    return str(ids[-1]) if isinstance(ids, list) and ids else default


class FallomCallbackHandler(BaseCallbackHandler):  # type: ignore[misc]
    """Records LangChain runs as fallom spans; get one from ``session.langchain_callback()``.

    Chains become ``chain`` spans (``agent`` when the run's name says agent), LLM and
    chat-model calls ``llm`` spans with model and token counts, tools ``tool`` spans
    and retrievers ``retrieval`` spans. Its ``on_*`` methods are LangChain's
    callbacks, with LangChain's parameters (their docstrings are LangChain's); none
    of them raises: a failure is logged once and the run goes untraced.

    Args:
        session: the session its spans carry; None: the session open where each run
            starts, if any.
    """

    run_inline = True  # called in the caller's context, also for async runs
    raise_error = False

    def __init__(self, session: Optional[SessionContext] = None) -> None:
        super().__init__()
        self.session = session
        self._runs: Dict[UUID, Span] = {}
        self._lock = threading.Lock()
        register(self)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    # -- span bookkeeping --------------------------------------------------------------
    def _start(self, run_id: UUID, parent_run_id: Optional[UUID], name: str, kind: str,
               inputs: Any = None, attributes: Optional[Dict[str, Any]] = None) -> None:
        if not _runtime.STATE.active:
            return
        try:
            with self._lock:
                parent = self._runs.get(parent_run_id) if parent_run_id else None
            span = Span(name, kind, {**(attributes or {}), "fallom.integration": "langchain"},
                        _runtime.STATE, parent)
            if self.session is not None:
                span.session = self.session
            if inputs is not None:
                span.set_input(inputs)
            with self._lock:
                self._runs[run_id] = span
        except Exception as exc:
            report_internal_error(exc, "langchain start")

    def _end(self, run_id: UUID, outputs: Any = None, error: Optional[BaseException] = None,
             fields: Optional[Dict[str, Any]] = None) -> None:
        with self._lock:
            span = self._runs.pop(run_id, None)
        if span is None:
            return
        try:
            if fields:
                _extract.apply(span, fields)
            if outputs is not None and not (fields and "output" in fields):
                span.set_output(outputs)
            if error is not None:
                span.record_exception(error)
        except Exception as exc:
            report_internal_error(exc, "langchain end")
        span.end()

    # -- chains and agents --------------------------------------------------------------------
    def on_chain_start(self, serialized: Optional[Dict[str, Any]], inputs: Any, *, run_id: UUID,
                       parent_run_id: Optional[UUID] = None, **kwargs: Any) -> None:
        kind = "agent" if "agent" in _name(serialized, kwargs, "").lower() else "chain"
        self._start(run_id, parent_run_id, _name(serialized, kwargs, "chain"), kind, inputs)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, outputs)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error=error)

    def on_agent_action(self, action: Any, *, run_id: UUID, **kwargs: Any) -> None:
        span = self._runs.get(run_id)
        if span is not None:
            span.set_attribute("agent.action", getattr(action, "tool", None))

    def on_agent_finish(self, finish: Any, *, run_id: UUID, **kwargs: Any) -> None:
        span = self._runs.get(run_id)
        if span is not None:
            span.set_output(getattr(finish, "return_values", None))

    # -- models ---------------------------------------------------------------------------------
    def _start_model(self, serialized: Optional[Dict[str, Any]], inputs: Any, run_id: UUID,
                     parent_run_id: Optional[UUID], kwargs: Dict[str, Any]) -> None:
        params = kwargs.get("invocation_params") or {}
        metadata = kwargs.get("metadata") or {}
        model = params.get("model") or params.get("model_name") or metadata.get("ls_model_name")
        attributes = {attr.PROVIDER: metadata.get("ls_provider"),
                      attr.REQUEST_MODEL: model,
                      attr.TEMPERATURE: params.get("temperature",
                                                   metadata.get("ls_temperature")),
                      attr.MAX_TOKENS: params.get("max_tokens",
                                                  metadata.get("ls_max_tokens"))}
        self._start(run_id, parent_run_id, _name(serialized, kwargs, "llm"), "llm", inputs,
                    {k: v for k, v in attributes.items() if v is not None})
        span = self._runs.get(run_id)
        if span is not None and model:
            span.set_model(str(model))

    def on_llm_start(self, serialized: Optional[Dict[str, Any]], prompts: List[str], *,
                     run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any) -> None:
        self._start_model(serialized, prompts[0] if len(prompts) == 1 else prompts, run_id,
                          parent_run_id, kwargs)

    def on_chat_model_start(self, serialized: Optional[Dict[str, Any]],
                            messages: List[List[Any]], *, run_id: UUID,
                            parent_run_id: Optional[UUID] = None, **kwargs: Any) -> None:
        batch = [[_message(m) for m in conversation] for conversation in messages]
        self._start_model(serialized, batch[0] if len(batch) == 1 else batch, run_id,
                          parent_run_id, kwargs)

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        span = self._runs.get(run_id)
        if span is not None:
            span.is_streaming = True
            if token and span.ttft_ns is None:
                span.record_first_token()

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, fields=_read_result(response))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error=error)

    # -- tools and retrievers ------------------------------------------------------------------
    def on_tool_start(self, serialized: Optional[Dict[str, Any]], input_str: str, *,
                      run_id: UUID, parent_run_id: Optional[UUID] = None,
                      **kwargs: Any) -> None:
        inputs = kwargs.get("inputs") or input_str
        self._start(run_id, parent_run_id, _name(serialized, kwargs, "tool"), "tool", inputs)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, getattr(output, "content", output))

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error=error)

    def on_retriever_start(self, serialized: Optional[Dict[str, Any]], query: str, *,
                           run_id: UUID, parent_run_id: Optional[UUID] = None,
                           **kwargs: Any) -> None:
        self._start(run_id, parent_run_id, _name(serialized, kwargs, "retriever"), "retrieval",
                    query)

    def on_retriever_end(self, documents: Sequence[Any], *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, [getattr(d, "page_content", d) for d in documents])

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error=error)


def _read_result(response: Any) -> Dict[str, Any]:
    """Model, usage and output from an ``LLMResult``."""
    generations = get(response, "generations") or [[]]
    first = generations[0][0] if generations and generations[0] else None
    message = get(first, "message")
    output: Any = _message(message) if message is not None else get(first, "text")
    if isinstance(output, dict) and set(output) == {"role", "content"}:
        output = output["content"]
    llm_output = get(response, "llm_output") or {}
    usage = get(llm_output, "token_usage") or get(llm_output, "usage") or {}
    meta = get(message, "usage_metadata") or {}
    response_meta = get(message, "response_metadata") or {}
    prompt = get(usage, "prompt_tokens") or get(meta, "input_tokens")
    completion = get(usage, "completion_tokens") or get(meta, "output_tokens")
    total = get(usage, "total_tokens") or get(meta, "total_tokens")
    fields = {"model": get(llm_output, "model_name") or get(response_meta, "model_name")
              or get(response_meta, "model"),
              "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total,
              "finish_reason": [response_meta["finish_reason"]]
              if response_meta.get("finish_reason") else None,
              "output": output}
    return {k: v for k, v in fields.items() if v is not None}
