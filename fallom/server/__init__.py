"""``fallom serve``: a local Fallom backend on SQLite, for development and tests."""

from fallom.server._app import FallomServer, serve

__all__ = ["FallomServer", "serve"]
