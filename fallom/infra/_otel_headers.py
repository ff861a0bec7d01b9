"""``OTEL_EXPORTER_OTLP_HEADERS`` parsing, kept free of OpenTelemetry imports."""

from __future__ import annotations

from typing import Dict, Optional
from urllib.parse import unquote

__all__ = ["parse_headers"]


def parse_headers(text: Optional[str]) -> Dict[str, str]:
    """``key=value`` pairs, comma separated, URL-encoded."""
    headers: Dict[str, str] = {}
    for pair in (text or "").split(","):
        key, sep, value = pair.partition("=")
        if sep and key.strip():
            headers[unquote(key.strip())] = unquote(value.strip())
    return headers
