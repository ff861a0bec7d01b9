"""The GenAI semantic conventions, mapped onto the fallom record.

Shared by ``FallomExporter`` (spans of an OpenTelemetry SDK in this process)
and ``fallom serve``'s OTLP ingest (spans from any language): both turn their
spans into :class:`SpanData` first, so one mapping reads the current names,
the common older ones, OpenLLMetry and OpenInference.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, NamedTuple, Optional, Protocol, Sequence, Tuple

from . import _attributes as attr
from ._json import json_text
from ._record import iso_time, output_json, timings_json, usage_json
from ._wire import RAW_REQUEST, RAW_RESPONSE, RAW_TIMINGS, RAW_USAGE

__all__ = ["SessionLike", "SpanData", "to_record"]


class SpanData(NamedTuple):
    """What the mapping reads of a span, whatever carried it."""

    name: str
    trace_id: int
    span_id: int
    parent_id: Optional[int]
    start_ns: int
    end_ns: int
    error: bool
    status_message: Optional[str]
    attributes: Dict[str, Any]
    events: Sequence[Tuple[str, Mapping[str, Any]]]  # (name, attributes)


class SessionLike(Protocol):
    """A fallom session's identity (``SessionContext`` has it)."""

    @property
    def config_key(self) -> str: ...
    @property
    def session_id(self) -> str: ...
    @property
    def customer_id(self) -> Optional[str]: ...


_MODEL = ("gen_ai.response.model", "gen_ai.request.model", "llm.response.model",
          "llm.request.model")
_INPUT_TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                 "llm.usage.prompt_tokens")
_OUTPUT_TOKENS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                  "llm.usage.completion_tokens")
_TOTAL_TOKENS = ("gen_ai.usage.total_tokens", "llm.usage.total_tokens")
_TTFT_MS = ("gen_ai.response.time_to_first_token_ms", "llm.time_to_first_token_ms")
_TTFT_S = ("gen_ai.server.time_to_first_token", "gen_ai.response.time_to_first_token")
_PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.vendor")
_SESSION = ("fallom.session_id", "gen_ai.conversation.id", "session.id")
_CUSTOMER = ("fallom.customer_id", "user.id", "enduser.id")
_INPUT = ("gen_ai.input.messages", "gen_ai.prompt", "input.value", "llm.prompts")
_OUTPUT = ("gen_ai.output.messages", "gen_ai.completion", "output.value", "llm.completions")
_INDEXED = (("gen_ai.prompt.", "input"), ("gen_ai.completion.", "output"),
            ("llm.prompts.", "input"), ("llm.completions.", "output"))
# Every attribute that carries prompt, completion, tool or retrieval text in the GenAI
# conventions (current and older names), OpenLLMetry/Traceloop and OpenInference: with
# content capture off none of them leaves the process.
_CONTENT_NAMES = frozenset({
    "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
    "gen_ai.prompt", "gen_ai.completion", "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result", "gen_ai.tool.definitions", "gen_ai.request.messages",
    "gen_ai.response.text", "input.value", "output.value", "llm.prompts", "llm.completions",
    "llm.input_messages", "llm.output_messages", "llm.prompt_template.template",
    "llm.prompt_template.variables", "traceloop.entity.input", "traceloop.entity.output",
    "traceloop.prompt.template", "traceloop.prompt.template_variables",
    "retrieval.documents", "embedding.embeddings", "tool.parameters",
    "tool_call.function.arguments",
    "exception.message", "exception.stacktrace"})
_CONTENT_PREFIXES = ("gen_ai.prompt.", "gen_ai.completion.", "llm.prompts.", "llm.completions.",
                     "llm.input_messages.", "llm.output_messages.", "retrieval.documents.",
                     "embedding.embeddings.", "gen_ai.input.messages.",
                     "gen_ai.output.messages.", "message.content", "llm.tools.")


def _first(attrs: Mapping[str, Any], names: Sequence[str]) -> Any:
    for name in names:
        value = attrs.get(name)
        if value is not None:
            return value
    return None


def _json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return list(value) if isinstance(value, tuple) else value


def _indexed(attrs: Mapping[str, Any], prefix: str) -> Optional[list[Dict[str, Any]]]:
    """OpenLLMetry's ``gen_ai.prompt.0.role`` / ``.content`` as a list of messages."""
    messages: Dict[int, Dict[str, Any]] = {}
    for name, value in attrs.items():
        if name.startswith(prefix):
            index, _, field = name[len(prefix):].partition(".")
            if index.isdigit() and field:
                messages.setdefault(int(index), {})[field] = value
    return [messages[i] for i in sorted(messages)] or None


def _content_keys(attrs: Mapping[str, Any]) -> set[str]:
    """Every attribute that carries content (dropped whole with capture off)."""
    keys = {k for k in attrs if k in _INPUT or k in _OUTPUT}
    keys |= {k for k in attrs for prefix, _ in _INDEXED if k.startswith(prefix)
             and (k.endswith(".content") or k.endswith(".arguments"))}
    return keys | {k for k in attrs if k in _CONTENT_NAMES or k.startswith(_CONTENT_PREFIXES)}


def _error(span: SpanData, capture: bool) -> Optional[str]:
    kind: Any = None
    message: Any = span.status_message
    for name, attributes in span.events:
        if name == "exception" and attributes:
            kind = attributes.get("exception.type") or kind
            message = attributes.get("exception.message") or message
    if not capture:
        return str(kind or "Error").rsplit(".", 1)[-1]
    return f"{kind}: {message}" if kind and message else str(message or kind or "Error")


def to_record(span: SpanData, session: Optional[SessionLike], capture: bool,
              config_key: str) -> Dict[str, Any]:
    """One OpenTelemetry span as a v2 fallom wire record (DESIGN §3).

    The session is ``session`` if given, else read from the span's attributes
    (``fallom.session_id``, ``gen_ai.conversation.id``, ``session.id``; the
    customer from ``fallom.customer_id``, ``user.id``, ``enduser.id``).
    """
    attrs = dict(span.attributes)
    trace_id = f"{span.trace_id:032x}"
    record: Dict[str, Any]
    if session is not None:
        record = {"config_key": session.config_key, "session_id": session.session_id}
        customer = session.customer_id
    else:
        session_id = _first(attrs, _SESSION)
        record = {"config_key": str(attrs.get("fallom.config_key") or config_key),
                  "session_id": str(session_id) if session_id else trace_id}
        customer = _first(attrs, _CUSTOMER)
    if customer:
        record["customer_id"] = str(customer)
    record.update(trace_id=trace_id, span_id=f"{span.span_id:016x}")
    if span.parent_id is not None:
        record["parent_span_id"] = f"{span.parent_id:016x}"
    model = _first(attrs, _MODEL)
    operation = attrs.get(attr.OPERATION)
    kind = "llm" if model or _first(attrs, _PROVIDER) else "span"
    if operation == "embeddings":
        kind = "embedding"
    elif operation == "execute_tool":
        kind = "tool"
    record.update(name=span.name, kind=kind)
    if model:
        record["model"] = str(model)
    start, end = span.start_ns, max(span.end_ns, span.start_ns)
    record.update(start_time=iso_time(start), end_time=iso_time(end),
                  duration_ms=(end - start + 500_000) // 1_000_000)
    ttft = _first(attrs, _TTFT_MS)
    seconds = _first(attrs, _TTFT_S) if ttft is None else None
    if seconds is not None:
        ttft = float(seconds) * 1000
    if ttft is not None:
        record["time_to_first_token_ms"] = round(float(ttft))
    record["status"] = "ERROR" if span.error else "OK"
    if record["status"] == "ERROR":
        record["error_message"] = _error(span, capture)
    if ttft is not None:
        record["is_streaming"] = True
    record["attributes"] = _attributes(attrs, capture, record, operation, end - start, ttft)
    return record


def _attributes(attrs: Dict[str, Any], capture: bool, record: Dict[str, Any],
                operation: Any, duration_ns: int, ttft: Optional[float]) -> Dict[str, Any]:
    provider = _first(attrs, _PROVIDER)
    if provider is not None:
        attrs[attr.PROVIDER] = provider
    out: Dict[str, Any] = {}
    used: set[str] = set()
    if capture:
        request, response = _content(attrs, used)
        if request is not None:
            out[RAW_REQUEST] = json_text(
                {"messages" if isinstance(request, list) else "input": request,
                 "model": record.get("model")})[0]
        if response is not None:
            out[RAW_RESPONSE] = output_json(response)[0]
    dropped = used if capture else _content_keys(attrs)  # moved into raw.*, or all of it
    out.update({k: _json(v) for k, v in attrs.items() if k not in dropped})
    out["fallom.sdk_version"] = "2"
    out["fallom.method"] = str(operation or record["name"])
    counts = _usage(attrs)
    if any(count is not None for count in counts):
        out[RAW_USAGE] = usage_json(*counts)
    out[RAW_TIMINGS] = timings_json(
        record["duration_ms"], duration_ns // 1000, None if ttft is None else round(ttft),
        0 if ttft is None else int(ttft * 1000))
    return out


def _usage(attrs: Mapping[str, Any]) -> Tuple[Optional[int], Optional[int], Optional[int]]:
    """(prompt, completion, total) token counts; the total derived when only it is missing."""
    prompt, completion, total = (None if value is None else int(value) for value in (
        _first(attrs, _INPUT_TOKENS), _first(attrs, _OUTPUT_TOKENS), _first(attrs, _TOTAL_TOKENS)))
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    return prompt, completion, total


def _content(attrs: Mapping[str, Any], used: set[str]) -> tuple[Any, Any]:
    """The input and output, and (in ``used``) the attributes they were read from."""
    found: Dict[str, Any] = {}
    for names, field in ((_INPUT, "input"), (_OUTPUT, "output")):
        for name in names:
            if attrs.get(name) is not None:
                found[field] = _json(attrs[name])
                used.add(name)
                break
    for prefix, field in _INDEXED:
        if field not in found:
            messages = _indexed(attrs, prefix)
            if messages is not None:
                found[field] = messages
                used.update(k for k in attrs if k.startswith(prefix))
    return found.get("input"), found.get("output")
