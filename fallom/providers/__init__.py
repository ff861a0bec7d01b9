"""Provider integrations: one module per provider, one shared wrapper (``_call``).

Nothing here imports a provider SDK; objects are read by attribute (or key,
for their JSON forms), so the SDKs stay optional. It may import
``fallom.tracing``, ``fallom.protocol`` and ``fallom.infra``.
"""

__all__: list[str] = []
