"""Attribute names, in one place: OpenTelemetry GenAI semantic conventions."""

from __future__ import annotations

__all__ = [
    "CACHED_TOKENS", "ERROR_TYPE", "FINISH_REASONS", "HTTP_STATUS", "MAX_TOKENS", "OPERATION",
    "PROVIDER", "REASONING_TOKENS", "REQUEST_MODEL", "RESPONSE_ID", "RESPONSE_MODEL",
    "TEMPERATURE", "TOOL_CALLS", "TOP_P",
]

PROVIDER = "gen_ai.provider.name"
OPERATION = "gen_ai.operation.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
TEMPERATURE = "gen_ai.request.temperature"
MAX_TOKENS = "gen_ai.request.max_tokens"
TOP_P = "gen_ai.request.top_p"
FINISH_REASONS = "gen_ai.response.finish_reasons"
RESPONSE_ID = "gen_ai.response.id"
CACHED_TOKENS = "gen_ai.usage.cached_tokens"
REASONING_TOKENS = "gen_ai.usage.reasoning_tokens"
TOOL_CALLS = "gen_ai.response.tool_calls"
ERROR_TYPE = "error.type"
HTTP_STATUS = "http.response.status_code"
