"""The ``fallom`` command: ``fallom serve`` and ``fallom traces``.

The top of the stack: it may import anything, and only ``__main__`` imports it.
"""

from fallom.cli._main import main

__all__ = ["main"]
