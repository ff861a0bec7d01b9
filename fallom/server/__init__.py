"""``fallom serve``: a local Fallom backend on SQLite, for development and tests.

It reads what every Fallom SDK sends through ``fallom.protocol`` and parses the
catalog with ``fallom.experiments``; it shares nothing else with the SDK's
runtime. Only ``fallom.cli`` imports it. See docs/serve.md.
"""

from fallom.server._app import FallomServer, serve

__all__ = ["FallomServer", "serve"]
