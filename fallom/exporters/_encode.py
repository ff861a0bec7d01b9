"""JSON encoding of records into size-capped batches.

orjson is used when installed (``fallom[fast]``): about twenty times faster
than the standard library for a 1 KB record. A record larger than the cap has
its largest fields cut, with a visible marker, rather than being dropped.
"""

from __future__ import annotations

import json
import zlib
from typing import Any, Callable, Dict, Iterator, List

__all__ = ["dumps", "fit_record", "gzip", "split_batches"]

_dumps: Callable[[Any], bytes]
try:  # pragma: no cover - depends on the optional extra
    import orjson

    def _dumps(value: Any) -> bytes:
        encoded: bytes = orjson.dumps(value, default=str)
        return encoded

except ImportError:  # pragma: no cover
    _encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)

    def _dumps(value: Any) -> bytes:
        return _encoder.encode(value).encode("utf-8")


dumps = _dumps
_CUTTABLE = ("input", "output", "attributes", "metadata", "error_message", "tags")
_PREFIX, _SUFFIX = b'{"traces":[', b"]}"


def fit_record(record: Dict[str, Any], max_bytes: int) -> bytes:
    """Encode ``record``; cut its largest fields until it fits in ``max_bytes``."""
    encoded = dumps(record)
    if len(encoded) <= max_bytes:
        return encoded
    record = dict(record)
    for _ in range(len(_CUTTABLE)):
        sizes = {k: len(dumps(record[k])) for k in _CUTTABLE if k in record}
        if not sizes:
            break
        largest = max(sizes, key=lambda k: sizes[k])
        excess = len(encoded) - max_bytes
        keep = max(0, sizes[largest] - excess - 64)
        text = record[largest] if isinstance(record[largest], str) else dumps(
            record[largest]).decode("utf-8", "replace")
        record[largest] = f"{text[:keep]}…[truncated {len(text) - keep} chars to fit the batch]"
        encoded = dumps(record)
        if len(encoded) <= max_bytes:
            return encoded
    return encoded


def split_batches(parts: List[bytes], max_bytes: int) -> Iterator[List[bytes]]:
    """Group encoded records into bodies of at most ``max_bytes`` each."""
    batch: List[bytes] = []
    size = len(_PREFIX) + len(_SUFFIX)
    for part in parts:
        if batch and size + len(part) + 1 > max_bytes:
            yield batch
            batch, size = [], len(_PREFIX) + len(_SUFFIX)
        batch.append(part)
        size += len(part) + 1
    if batch:
        yield batch


def gzip(parts: List[bytes]) -> bytes:
    """The gzip-compressed body ``{"traces": [...]}`` (level 1: fast, still ~5x smaller)."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    return compressor.compress(_PREFIX + b",".join(parts) + _SUFFIX) + compressor.flush()
