"""Reading records in tests."""

from __future__ import annotations

from typing import Any, Dict, Mapping


def own_attributes(record: Mapping[str, Any]) -> Dict[str, Any]:
    """A record's attributes without the ``fallom.*`` ones every record carries."""
    return {k: v for k, v in record.get("attributes", {}).items() if not k.startswith("fallom.")}
