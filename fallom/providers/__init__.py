"""Provider integrations: one module per provider, one shared wrapper (``_call``).

Nothing here imports a provider SDK; objects are read by attribute (or key,
for their JSON forms), so the SDKs stay optional.
"""

__all__: list[str] = []
