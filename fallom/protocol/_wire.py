"""Read a wire record of any Fallom SDK: tokens, model, input and output.

The v2 records of docs/design.md §3.3 keep tokens and content inside ``attributes`` as
``fallom.raw.*`` JSON strings, in each provider's own shape; records of
earlier fallom versions had them as top-level fields. Everything that reads
records (the console, the test kit, OTLP out, ``fallom serve`` and
``fallom traces``) goes through :class:`RecordView`, so each shape is parsed
in one place.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, Mapping, Optional, Tuple

__all__ = ["RAW_REQUEST", "RAW_RESPONSE", "RAW_TIMINGS", "RAW_USAGE", "RecordView",
           "is_number", "read_usage"]

RAW_REQUEST = "fallom.raw.request"
RAW_RESPONSE = "fallom.raw.response"
RAW_USAGE = "fallom.raw.usage"
RAW_TIMINGS = "fallom.raw.timings"

# (prompt, completion, total) names, most common first: OpenAI, Anthropic and the
# Responses API, Google in Python (snake) and JavaScript (camel), the Vercel AI SDK.
_USAGE_NAMES: Tuple[Tuple[str, str, str], ...] = (
    ("prompt_tokens", "completion_tokens", "total_tokens"),
    ("input_tokens", "output_tokens", "total_tokens"),
    ("prompt_token_count", "candidates_token_count", "total_token_count"),
    ("promptTokenCount", "candidatesTokenCount", "totalTokenCount"),
    ("promptTokens", "completionTokens", "totalTokens"),
    ("inputTokens", "outputTokens", "totalTokens"),
)
_GENERIC_REQUEST = frozenset({"input", "model"})
_GENERIC_RESPONSE = frozenset({"output", "text"})


def _count(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 2**53 else None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return _count(int(value))
    return None


def is_number(value: Any) -> bool:
    """A finite JSON number (``True`` is not one)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def read_usage(usage: Any) -> Tuple[Optional[int], Optional[int], Optional[int]]:
    """(prompt, completion, total) tokens from any provider's usage object."""
    if not isinstance(usage, Mapping):
        return None, None, None
    for prompt_name, completion_name, total_name in _USAGE_NAMES:
        if prompt_name in usage or completion_name in usage:
            prompt, completion = _count(usage.get(prompt_name)), _count(usage.get(completion_name))
            total = _count(usage.get(total_name))
            if total is None and prompt is not None and completion is not None:
                total = prompt + completion
            return prompt, completion, total
    return None, None, _count(usage.get("total_tokens"))


def _parsed(value: Any) -> Any:
    """A ``fallom.raw.*`` attribute: a JSON string (as sent), or already a value."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


_MISSING: Any = object()


class RecordView:
    """Read-only accessors over one record, whatever SDK and version wrote it.

    Each property parses what it needs on first use and reads None for what the
    record lacks or holds in a shape it does not know.

    Args:
        record: one wire record (a span as exported), kept as :attr:`record`, not
            copied.
    """

    __slots__ = ("_cache", "record")

    def __init__(self, record: Mapping[str, Any]) -> None:
        self.record = record
        self._cache: Dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<RecordView {self.record.get('name')!r} span={self.record.get('span_id')}>"

    @property
    def attributes(self) -> Mapping[str, Any]:
        attributes = self.record.get("attributes")
        return attributes if isinstance(attributes, Mapping) else {}

    def raw(self, name: str) -> Any:
        """The parsed ``fallom.raw.<name>`` attribute, parsed once per view.

        Args:
            name: ``request``, ``response``, ``usage`` or ``timings`` (or any other
                ``fallom.raw.*`` suffix).

        Returns:
            The attribute's JSON decoded; a string that is not JSON, or a value that
            is not a string, as it is; None when the record has no such attribute.
        """
        key = f"fallom.raw.{name}"
        cached = self._cache.get(key, _MISSING)
        if cached is _MISSING:
            cached = self._cache[key] = _parsed(self.attributes.get(key))
        return cached

    @property
    def method(self) -> Optional[str]:
        method = self.attributes.get("fallom.method")
        return method if isinstance(method, str) else None

    @property
    def usage(self) -> Tuple[Optional[int], Optional[int], Optional[int]]:
        usage = self.raw("usage")
        if usage is not None:
            found = read_usage(usage)
            if found != (None, None, None):
                return found
        record = self.record  # records of fallom before the v2 shape
        return (_count(record.get("prompt_tokens")), _count(record.get("completion_tokens")),
                _count(record.get("total_tokens")))

    @property
    def prompt_tokens(self) -> Optional[int]:
        return self.usage[0]

    @property
    def completion_tokens(self) -> Optional[int]:
        return self.usage[1]

    @property
    def total_tokens(self) -> Optional[int]:
        return self.usage[2]

    def _timing(self, micros: str) -> Optional[float]:
        timings = self.raw("timings")
        value = timings.get(micros) if isinstance(timings, Mapping) else None
        return float(value) / 1000 if value is not None and is_number(value) else None

    @property
    def duration_ms(self) -> Optional[float]:
        """Milliseconds, to the microsecond where the record has it."""
        precise = self._timing("durationUs")
        if precise is not None:
            return precise
        value = self.record.get("duration_ms")
        return value if is_number(value) else None

    @property
    def time_to_first_token_ms(self) -> Optional[float]:
        precise = self._timing("firstTokenUs")
        if precise is not None:
            return precise
        for value in (self.record.get("time_to_first_token_ms"),
                      self.attributes.get("fallom.time_to_first_token_ms")):
            if is_number(value):
                return value
        timings = self.raw("timings")
        first = timings.get("firstTokenTime") if isinstance(timings, Mapping) else None
        return first if is_number(first) else None

    @property
    def input(self) -> Any:
        """What went in: captured arguments, or the provider request's messages."""
        request = self.raw("request")
        if request is None:
            return self.record.get("input")
        if isinstance(request, Mapping):
            if set(request) <= _GENERIC_REQUEST and "input" in request:
                return request["input"]
            present = {k: v for k, v in request.items() if v is not None and k != "model"}
            if len(present) == 1:  # messages, contents, prompt or input alone
                return next(iter(present.values()))
            return present
        return request

    @property
    def output(self) -> Any:
        """What came out: the captured result, or the provider response's text."""
        response = self.raw("response")
        if response is None:
            return self.record.get("output")
        if isinstance(response, Mapping):
            if "output" in response and set(response) <= _GENERIC_RESPONSE:
                return response["output"]
            calls = response.get("toolCalls")
            if calls:
                return {"text": response.get("text"), "toolCalls": calls}
            if "text" in response:
                return response["text"]
        return response

    @property
    def has_input(self) -> bool:
        return self.raw("request") is not None or "input" in self.record

    @property
    def has_output(self) -> bool:
        return self.raw("response") is not None or "output" in self.record
