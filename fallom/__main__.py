"""``python -m fallom`` is the ``fallom`` command."""

import sys

from fallom.cli._main import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
