"""Encoding records for the wire: bare records, or size-capped batches.

A record larger than the cap has its largest fields cut, with a visible
marker, rather than being dropped; so has a value no encoder takes.
"""

from __future__ import annotations

import zlib
from typing import Any, Dict, Iterator, List, Tuple

from fallom.protocol._json import dumps, encode_record

__all__ = ["batch_body", "dumps", "fit_record", "gzip", "split_batches"]

_CUTTABLE = ("attributes", "metadata", "error_message", "tags", "input", "output")
_PREFIX, _SUFFIX = b'{"traces":[', b"]}"


def fit_record(record: Dict[str, Any], max_bytes: int) -> Tuple[bytes, bool]:
    """Encode ``record``; cut what cannot be encoded, then its largest fields until it fits.

    Returns the bytes and whether anything was cut.
    """
    encoded, cut = encode_record(record)
    if len(encoded) <= max_bytes:
        return encoded, cut
    record = dict(record)
    for _ in range(len(_CUTTABLE)):
        sizes = {k: len(encode_record({k: record[k]})[0]) for k in _CUTTABLE if k in record}
        if not sizes:
            break
        largest = max(sizes, key=lambda k: sizes[k])
        excess = len(encoded) - max_bytes
        keep = max(0, sizes[largest] - excess - 64)
        value = record[largest]
        text = value if isinstance(value, str) else encode_record({"v": value})[0][5:-1].decode(
            "utf-8", "replace")
        record[largest] = f"{text[:keep]}…[truncated {len(text) - keep} chars to fit the batch]"
        encoded = encode_record(record)[0]
        if len(encoded) <= max_bytes:
            break
    return encoded, True


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


def batch_body(parts: List[bytes]) -> bytes:
    """``{"traces": [...]}`` around already encoded records."""
    return _PREFIX + b",".join(parts) + _SUFFIX


def gzip(body: bytes) -> bytes:
    """gzip at level 1: fast, and still about five times smaller for records."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    return compressor.compress(body) + compressor.flush()
