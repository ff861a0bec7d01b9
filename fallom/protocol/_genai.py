"""The GenAI semantic conventions, mapped onto the fallom record.

Shared by ``FallomExporter`` (spans of an OpenTelemetry SDK in this process)
and ``fallom serve``'s OTLP ingest (spans from any language): both turn their
spans into :class:`SpanData` first, so one mapping reads the current names,
the common older ones, OpenLLMetry and OpenInference.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, NamedTuple, Optional, Protocol, Sequence, Tuple

from fallom.protocol import _names as attr
from fallom.protocol._capture import Limits, clip, to_jsonable
from fallom.protocol._fields import iso_time, output_json, timings_json, token_count, usage_json
from fallom.protocol._json import json_text
from fallom.protocol._wire import RAW_REQUEST, RAW_RESPONSE, RAW_TIMINGS, RAW_USAGE

__all__ = ["SessionLike", "SpanData", "record_from_genai"]


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
# Privacy mode (capture_content=False) keeps only these attributes of a foreign span:
# what describes a call without its text. An allow-list, not a deny-list, since every
# framework invents content attributes of its own (Pydantic AI's ``tool_arguments``,
# OpenInference's ``reranker.query``) that no list of names could keep up with.
_NOT_CONTENT = frozenset({
    # GenAI semantic conventions: the call, the model, the sampling, the answer's shape
    attr.OPERATION, attr.PROVIDER, "gen_ai.system", attr.REQUEST_MODEL, attr.RESPONSE_MODEL,
    attr.TEMPERATURE, attr.MAX_TOKENS, attr.TOP_P, "gen_ai.request.top_k",
    "gen_ai.request.frequency_penalty", "gen_ai.request.presence_penalty",
    "gen_ai.request.seed", "gen_ai.request.choice.count", "gen_ai.request.encoding_formats",
    "gen_ai.output.type", attr.RESPONSE_ID, attr.FINISH_REASONS,
    "gen_ai.response.time_to_first_token_ms", "gen_ai.response.time_to_first_token",
    "gen_ai.server.time_to_first_token", "gen_ai.server.time_per_output_token",
    "gen_ai.conversation.id", "gen_ai.agent.id", "gen_ai.agent.name", "gen_ai.tool.name",
    "gen_ai.tool.call.id", "gen_ai.tool.type", "gen_ai.data_source.id",
    "gen_ai.embeddings.dimension.count", "gen_ai.openai.request.service_tier",
    "gen_ai.openai.response.service_tier", "gen_ai.openai.response.system_fingerprint",
    attr.ERROR_TYPE, attr.HTTP_STATUS, "server.address", "server.port",
    # who and which session
    "session.id", "user.id", "enduser.id", "fallom.session_id", "fallom.customer_id",
    "fallom.config_key",
    # OpenLLMetry / Traceloop
    "llm.vendor", "llm.request.type", "llm.request.model", "llm.response.model",
    "llm.is_streaming", "llm.request.max_tokens", "llm.temperature", "llm.top_p",
    "llm.top_k", "llm.frequency_penalty", "llm.presence_penalty", "llm.response.finish_reason",
    "llm.response.stop_reason", "llm.time_to_first_token_ms", "llm.user",
    "traceloop.span.kind", "traceloop.workflow.name", "traceloop.entity.name",
    "traceloop.entity.path",
    # OpenInference
    "openinference.span.kind", "llm.model_name", "llm.provider", "llm.system",
    "embedding.model_name", "input.mime_type", "output.mime_type", "tool.name",
    # Pydantic AI / logfire
    "model_name", "agent_name", "logfire.span_type",
})
_NOT_CONTENT_PREFIXES = ("gen_ai.usage.", "llm.usage.", "llm.token_count.", "service.",
                         "telemetry.", "deployment.")


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
        except (ValueError, RecursionError):  # not JSON, or nested past what Python reads
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


def _not_content(key: str) -> bool:
    """Kept in privacy mode: an attribute known to describe the call, not carry its text."""
    return key in _NOT_CONTENT or key.startswith(_NOT_CONTENT_PREFIXES)


def _error(span: SpanData, capture: bool) -> str:
    kind: Any = None
    message: Any = span.status_message
    for name, attributes in span.events:
        if name == "exception" and attributes:
            kind = attributes.get("exception.type") or kind
            message = attributes.get("exception.message") or message
    if not capture:
        return str(kind or "Error").rsplit(".", 1)[-1]
    return f"{kind}: {message}" if kind and message else str(message or kind or "Error")


def record_from_genai(span: SpanData, session: Optional[SessionLike], capture: bool,
              config_key: str, limits: Optional[Limits] = None) -> Dict[str, Any]:
    """One OpenTelemetry span as a v2 fallom wire record (docs/design.md §3.3).

    The session is ``session`` if given, else read from the span's attributes
    (``fallom.session_id``, ``gen_ai.conversation.id``, ``session.id``; the
    customer from ``fallom.customer_id``, ``user.id``, ``enduser.id``). With
    ``limits`` (an SDK's capture limits) every value is clipped to them and made
    JSON-safe; a value that is not what its name says (``inf`` tokens, ``"lots"``)
    is left out of what is derived from it, in this span alone.
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
    record.update(name=_text(span.name, limits), kind=kind)
    if model:
        record["model"] = _text(str(model), limits)
    start, end = span.start_ns, max(span.end_ns, span.start_ns)
    record.update(start_time=iso_time(start), end_time=iso_time(end),
                  duration_ms=(end - start + 500_000) // 1_000_000)
    ttft = _ttft_ms(attrs)
    if ttft is not None:
        record["time_to_first_token_ms"] = round(ttft)
    record["status"] = "ERROR" if span.error else "OK"
    if record["status"] == "ERROR":
        record["error_message"] = _text(_error(span, capture), limits)
    if ttft is not None:
        record["is_streaming"] = True
    record["attributes"] = _genai_attributes(attrs, capture, record, operation, end - start, ttft,
                                       limits)
    return record


_MAX_MS = 1e15  # ~31,000 years: beyond it a duration is not one


def _ttft_ms(attrs: Mapping[str, Any]) -> Optional[float]:
    """Time to first token in ms (from ms or seconds); None when absent or not a duration."""
    value, scale = _first(attrs, _TTFT_MS), 1.0
    if value is None:
        value, scale = _first(attrs, _TTFT_S), 1000.0
    if value is None or isinstance(value, bool):
        return None
    try:
        ms = float(value) * scale
    except Exception:
        return None
    return ms if 0 <= ms < _MAX_MS else None  # NaN fails both comparisons


def _text(text: str, limits: Optional[Limits]) -> str:
    return text if limits is None else clip(text, limits.max_chars)


def _value(value: Any, limits: Optional[Limits]) -> Any:
    """An attribute's value as it goes out: JSON text parsed, and with ``limits`` clipped
    and made JSON-safe (``inf`` becomes ``"Infinity"``, as captured values do)."""
    parsed = _json(value)
    return parsed if limits is None else to_jsonable(parsed, limits)


def _genai_attributes(attrs: Dict[str, Any], capture: bool, record: Dict[str, Any],
                operation: Any, duration_ns: int, ttft: Optional[float],
                limits: Optional[Limits]) -> Dict[str, Any]:
    provider = _first(attrs, _PROVIDER)
    if provider is not None:
        attrs[attr.PROVIDER] = provider
    out: Dict[str, Any] = {}
    if capture:
        used: set[str] = set()
        request, response = _content(attrs, used, limits)
        if request is not None:
            out[RAW_REQUEST] = json_text(
                {"messages" if isinstance(request, list) else "input": request,
                 "model": record.get("model")})[0]
        if response is not None:
            out[RAW_RESPONSE] = output_json(response)[0]
        out.update({k: _value(v, limits) for k, v in attrs.items() if k not in used})
    else:  # only what is known not to be content
        out.update({k: _value(v, limits) for k, v in attrs.items() if _not_content(k)})
    out["fallom.sdk_version"] = "2"
    out["fallom.method"] = _text(str(operation or record["name"]), limits)
    counts = _usage(attrs)
    if any(count is not None for count in counts):
        out[RAW_USAGE] = usage_json(*counts)
    out[RAW_TIMINGS] = timings_json(
        record["duration_ms"], duration_ns // 1000, None if ttft is None else round(ttft),
        0 if ttft is None else int(ttft * 1000))
    return out


def _usage(attrs: Mapping[str, Any]) -> Tuple[Optional[int], Optional[int], Optional[int]]:
    """(prompt, completion, total) token counts; the total derived when only it is missing.

    A count that is not a whole number of tokens is left out (the attribute itself
    stays, as sent)."""
    prompt, completion, total = (None if value is None else token_count(value) for value in (
        _first(attrs, _INPUT_TOKENS), _first(attrs, _OUTPUT_TOKENS), _first(attrs, _TOTAL_TOKENS)))
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    return prompt, completion, total


def _content(attrs: Mapping[str, Any], used: set[str],
             limits: Optional[Limits]) -> tuple[Any, Any]:
    """The input and output, and (in ``used``) the attributes they were read from."""
    found: Dict[str, Any] = {}
    for names, field in ((_INPUT, "input"), (_OUTPUT, "output")):
        for name in names:
            if attrs.get(name) is not None:
                found[field] = _value(attrs[name], limits)
                used.add(name)
                break
    for prefix, field in _INDEXED:
        if field not in found:
            messages = _indexed(attrs, prefix)
            if messages is not None:
                found[field] = messages if limits is None else to_jsonable(messages, limits)
                used.update(k for k in attrs if k.startswith(prefix))
    return found.get("input"), found.get("output")
