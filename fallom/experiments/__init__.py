"""Experiments: A/B model assignment and managed prompts.

Owns deterministic assignment (``_assign``), the configs and prompts stores
refreshed in the background (``_stores``) and the remote fetch and report
client (``_remote``): no call on the user's path waits on the network. The
public faces are ``fallom.models`` and ``fallom.prompts``. It may import
``fallom.tracing``, ``fallom.protocol`` and ``fallom.infra``.
See docs/design.md §6.
"""
