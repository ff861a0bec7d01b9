"""One JSON encoder for the export path, and text that is never lost to it.

orjson (a dependency everywhere but PyPy, as in LangSmith) is about twenty
times faster than the standard library for a 1 KB record; without it the
standard library's encoder does the same work. Either can refuse a value (a
lone surrogate, an integer beyond 64 bits or 4,300 digits): :func:`json_text`
and :func:`encode_record` then cut only what failed, with a visible marker,
so one bad value never costs the rest of a record or of its batch.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Tuple

__all__ = ["dumps", "encode_record", "json_text", "repair_text", "repaired"]


def _stdlib_text(ensure_ascii: bool) -> Callable[[Any], str]:
    """The standard library's C encoder, made once: ``JSONEncoder.encode`` builds it
    again for every call, which costs more than encoding a short value."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - an interpreter without the C accelerator
        return json.JSONEncoder(ensure_ascii=ensure_ascii, separators=(",", ":"), default=str,
                                check_circular=False).encode
    strings = json.encoder.encode_basestring_ascii if ensure_ascii \
        else json.encoder.encode_basestring
    # no cycle check: values come from the cycle-safe capture
    iterencode = make(None, str, strings, None, ":", ",", False, False, True)

    def text(value: Any) -> str:
        if type(value) is str:
            return strings(value)
        return "".join(iterencode(value, 0))
    return text


_dumps: Callable[[Any], bytes]
_text: Callable[[Any], str]
try:  # pragma: no cover - depends on the optional extra
    import orjson

    def _dumps(value: Any) -> bytes:
        encoded: bytes = orjson.dumps(value, default=str)
        return encoded

    def _text(value: Any) -> str:
        return orjson.dumps(value, default=str).decode("utf-8")

except ImportError:  # pragma: no cover
    _text = _stdlib_text(ensure_ascii=False)

    def _dumps(value: Any) -> bytes:
        return _text(value).encode("utf-8")


dumps = _dumps
_ascii_text = _stdlib_text(ensure_ascii=True)


def _marker(exc: Exception) -> str:
    # The exception's type only: its message may quote the value (captured content).
    return f"[cut by fallom: the value could not be encoded as JSON ({type(exc).__name__})]"


def repair_text(text: str) -> str:
    """``text`` as valid Unicode: a lone surrogate (``os.fsdecode(b"\\xff")``) becomes U+FFFD,
    a pair written as two code points becomes the character; what a backend stores."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def repaired(value: Any, depth: int = 0) -> Any:
    """``value`` with every string (keys too) repaired; anything else as it is."""
    if isinstance(value, str):
        return repair_text(value)
    if depth > 200:
        return value
    if isinstance(value, dict):
        return {(repair_text(k) if isinstance(k, str) else k): repaired(v, depth + 1)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [repaired(item, depth + 1) for item in value]
    return value


def json_text(value: Any) -> Tuple[str, bool]:
    """``value`` as JSON text, and whether anything had to be cut to get it."""
    try:
        return _text(value), False
    except Exception:
        pass
    value = repaired(value)
    try:  # and integers of any size up to 4,300 digits
        return _ascii_text(value), False
    except Exception as exc:
        return _ascii_text(_marker(exc)), True


def encode_record(record: Dict[str, Any]) -> Tuple[bytes, bool]:
    """The record as JSON bytes; a field that cannot be encoded is replaced by a marker."""
    try:
        return dumps(record), False
    except Exception:
        pass
    record = repaired(record)  # a backend refuses a record with a lone surrogate
    try:
        return _ascii_text(record).encode("ascii"), False
    except Exception:
        pass
    fixed: Dict[str, Any] = {}
    cut = False
    for key, value in record.items():
        key = key if isinstance(key, str) else str(key)  # a redact hook may add any key
        if isinstance(value, dict):
            fixed[key], inner = _encodable_mapping(value)
            cut = cut or inner
        else:
            fixed[key], inner = _encodable(value)
            cut = cut or inner
    return dumps(fixed), cut


def _encodable_mapping(value: Dict[str, Any]) -> Tuple[Dict[str, Any], bool]:
    out: Dict[str, Any] = {}
    cut = False
    for key, item in value.items():
        safe_key = key.encode("utf-8", "replace").decode("utf-8") if isinstance(key, str) \
            else str(key)
        out[safe_key], inner = _encodable(item)
        cut = cut or inner
    return out, cut


def _encodable(value: Any) -> Tuple[Any, bool]:
    try:
        dumps(value)
        return value, False
    except Exception as exc:
        return _marker(exc), True
