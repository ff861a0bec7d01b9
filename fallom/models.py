"""Model A/B testing: which model this session uses, from cached configs.

``get`` answers from memory (a cold cache waits at most ``cold_start_timeout``)
with exactly the assignment of the other Fallom SDKs, so a Python and a Node
service sharing a config agree on every session.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from fallom import _sdk
from fallom.experiments import _stores
from fallom.experiments._assign import choose
from fallom.infra._guard import logger, report_internal_error

__all__ = ["get", "init"]


def init(api_key: Optional[str] = None, base_url: Optional[str] = None) -> None:
    """Start model A/B testing alone, as ``fallom.models.init`` of fallom 0.2.x does.

    ``fallom.init()`` does this and more; this keeps every other setting as it is.

    Args:
        api_key: the Fallom API key; None: as configured (or ``FALLOM_API_KEY``).
        base_url: where configs are fetched from (``configs_url``); None: as configured.

    Raises:
        ValueError: a wrong value, naming the parameter.
    """
    _sdk.init_part(api_key=api_key, configs_url=base_url)


def get(config_key: str, session_id: str, version: Optional[int] = None,
        fallback: Optional[str] = None, customer_id: Optional[str] = None,
        context: Optional[Mapping[str, Any]] = None, debug: bool = False) -> str:
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
        debug: log the answer (at INFO, on the ``fallom`` logger), as 0.2.x's
            ``debug`` printed it.

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
    if debug:
        logger.info("fallom: models.get(%r, %r) -> %r", config_key, session_id,
                    model if model is not None else fallback)
    if model is not None:
        return model
    if fallback is not None:
        return fallback
    pinned = "" if version is None else f" version {version}"
    raise ValueError(f"no config {config_key!r}{pinned} is available and no fallback was given")
