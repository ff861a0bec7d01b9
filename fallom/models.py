"""Model A/B testing: which model this session uses, from cached configs.

``get`` answers from memory (a cold cache waits at most ``cold_start_timeout``)
with exactly the assignment of the other Fallom SDKs, so a Python and a Node
service sharing a config agree on every session.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from fallom.experiments import _stores
from fallom.experiments._assign import choose
from fallom.infra._guard import report_internal_error

__all__ = ["get"]


def get(config_key: str, session_id: str, *, fallback: Optional[str] = None,
        version: Optional[int] = None, customer_id: Optional[str] = None,
        context: Optional[Mapping[str, Any]] = None) -> str:
    """The model for ``session_id`` under config ``config_key``.

    Targeting (by ``customer_id`` and ``context``) first, else the weighted
    md5 bucket of the session id. Assignments are reported to Fallom in the
    background. Answered from memory; only a cold cache (the first call after
    ``init()``) waits, at most ``cold_start_timeout``.

    Args:
        config_key: the config's key: a non-empty string.
        session_id: what the bucket is drawn from, so a session keeps its model: a
            string ("" too).
        fallback: the model to return when the config (or that ``version``) is not
            available: before ``init()``, in local mode, or not fetched in time.
            None: raise instead.
        version: a pinned config version (a whole number, or its digits as a
            string); None: the latest.
        customer_id: what targeting rules on customers match; None: none.
        context: the fields other targeting rules match; None: none.

    Returns:
        The model name.

    Raises:
        ValueError: the config is not available and there is no ``fallback`` (the
            message names the key), or an argument has the wrong type. A failure
            inside fallom is logged once and treated as "not available".
    """
    if type(config_key) is not str or not config_key:  # checks cost a call only when wrong
        _stores.required(config_key, "config_key")
    if type(session_id) is not str:  # "" hashes like any string
        _stores.required(session_id, "session_id", empty=True)
    if version is not None:
        version = _stores.version_number(version)
    model: Optional[str] = None
    try:
        experiments = _stores.current()
        if experiments is not None:
            store = experiments.configs
            config = store.latest(config_key) if version is None else store.pinned(
                config_key, version)
            if config is not None:
                model = choose(config, session_id, customer_id, context).model
                experiments.report(config, session_id, model)
    except Exception as exc:
        report_internal_error(exc, "models.get")
    if model is not None:
        return model
    if fallback is not None:
        return fallback
    pinned = "" if version is None else f" version {version}"
    raise ValueError(f"no config {config_key!r}{pinned} is available and no fallback was given")
