"""The record's encoded fields: times, token counts, and the ``fallom.raw.*`` JSON texts.

Shared by every producer of records (a finished span, a foreign OpenTelemetry
span), so each field is written one way whoever writes it (docs/design.md §3).
"""

from __future__ import annotations

import datetime
from typing import Any, Optional, Tuple

from fallom.protocol._json import json_text

__all__ = ["iso_time", "output_json", "timings_json", "token_count", "usage_json"]


_last_second: list[Any] = [None, ""]


def iso_time(ns: int) -> str:
    """ISO 8601 UTC with microseconds, as the other Fallom SDKs send.

    Records come in bursts within one second, so the formatted second is
    cached (one entry; a race only costs a recomputation).
    """
    seconds, micros = divmod(ns // 1000, 1_000_000)
    cached = _last_second
    if cached[0] != seconds:
        moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
        cached[1], cached[0] = moment.strftime("%Y-%m-%dT%H:%M:%S"), seconds
        return f"{cached[1]}.{micros:06d}Z"
    return f"{cached[1]}.{micros:06d}Z"


def token_count(value: Any) -> Optional[int]:
    """A token count as a non-negative int (``12``, ``12.0``, ``"12"``); None for anything
    else (``inf``, ``"lots"``, ``True``, ``-1``, ``1e300``, an object whose ``__int__``
    raises)."""
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            return None
        count = int(value)
    except Exception:
        return None
    return count if 0 <= count < _MAX_COUNT else None


_MAX_COUNT = 1 << 63  # what a signed 64-bit column, and every JSON reader, holds


def output_json(value: Any) -> Tuple[str, bool]:
    """``fallom.raw.response`` of a call that is not a known provider's: text as both
    ``output`` and ``text`` (as the reference SDKs send it, encoded once here), anything
    else as ``output``; and whether anything had to be cut."""
    if isinstance(value, str):
        text, cut = json_text(value)
        return f'{{"output":{text},"text":{text}}}', cut
    return json_text({"output": value})


def usage_json(prompt: Optional[int], completion: Optional[int], total: Optional[int]) -> str:
    """``fallom.raw.usage`` from whole counts, the ones that are known."""
    parts = [f'"{name}":{value}' for name, value in (
        ("prompt_tokens", prompt), ("completion_tokens", completion),
        ("total_tokens", total)) if value is not None]
    return "{" + ",".join(parts) + "}"


def timings_json(duration_ms: int, duration_us: int, ttft_ms: Optional[int] = None,
                 ttft_us: int = 0, streaming: bool = False) -> str:
    """``fallom.raw.timings``: the reference's keys in whole milliseconds, and microseconds
    beside them; written without the JSON encoder (every value is an int)."""
    first = "" if ttft_ms is None else f',"firstTokenTime":{ttft_ms},"firstTokenUs":{ttft_us}'
    last = ',"isStreaming":true' if streaming else ""
    return (f'{{"requestStart":0,"requestEnd":{duration_ms},"responseEnd":{duration_ms},'
            f'"totalDurationMs":{duration_ms},"durationUs":{duration_us}{first}{last}}}')
