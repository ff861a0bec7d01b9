"""The ``fallom_spans`` pytest fixture, registered through ``pytest11``."""

from __future__ import annotations

from typing import Iterator

import pytest

from fallom.testing import CapturedSpans, capture_spans

__all__ = ["fallom_spans"]


@pytest.fixture
def fallom_spans() -> Iterator[CapturedSpans]:
    """The records of every span finished during the test."""
    with capture_spans() as records:
        yield records
