"""Assertions shared by the decoration-site tests."""

from __future__ import annotations

import inspect
from typing import Any, Callable


def assert_same_identity(original: Callable[..., Any], decorated: Callable[..., Any]) -> None:
    """What tools read off a function survives decoration."""
    assert decorated.__name__ == original.__name__
    assert decorated.__qualname__ == original.__qualname__
    assert decorated.__doc__ == original.__doc__
    assert inspect.signature(decorated) == inspect.signature(original)
    for check in (inspect.iscoroutinefunction, inspect.isgeneratorfunction,
                  inspect.isasyncgenfunction):
        assert check(decorated) == check(original), check.__name__
