"""``evals.init``: where results are uploaded and which judge scores them.

Upload needs ``init`` with a Fallom key, as in 0.2.7. The judge is any
OpenAI-compatible chat-completions server: by argument, else
``FALLOM_JUDGE_BASE_URL`` / ``FALLOM_JUDGE_API_KEY``, else OpenRouter with
``OPENROUTER_API_KEY`` (the references' judge). The environment is read when a
run starts, as 0.2.7 reads ``OPENROUTER_API_KEY``, so a key set later still counts.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Dict, Optional
from urllib.parse import urlsplit

from fallom.infra._config import _URL, _ApiKey
from fallom.tracing import _runtime

__all__ = ["CONFIG", "DEFAULT_JUDGE_MODEL", "Judge", "config", "init", "resolve_judge"]

DEFAULT_JUDGE_MODEL = "openai/gpt-4o-mini"
DEFAULT_BASE_URL = "https://app.fallom.com"
OPENROUTER_URL = "https://openrouter.ai/api/v1"
_OPENROUTER_HOST = "openrouter.ai"
_NO_KEY = "No API key provided. Set FALLOM_API_KEY environment variable or pass api_key parameter."
_NO_JUDGE_KEY = ("OPENROUTER_API_KEY environment variable required for evaluations (the default "
                 "judge is OpenRouter); or point the judge at another OpenAI-compatible server "
                 "with evals.init(judge_base_url=..., judge_api_key=...) or "
                 "FALLOM_JUDGE_BASE_URL / FALLOM_JUDGE_API_KEY.")


@dataclass(frozen=True)
class _Config:
    """What ``init`` said; replaced whole, so a run reads one consistent configuration."""

    api_key: Optional[str] = None
    base_url: str = DEFAULT_BASE_URL
    initialized: bool = False
    judge_base_url: Optional[str] = None  # None: the environment's, else OpenRouter
    judge_api_key: Optional[str] = None
    judge_timeout: float = 60.0  # 0.2.7's


CONFIG = _Config()


def config() -> _Config:
    """The configuration ``init`` last set."""
    return CONFIG


def init(api_key: Optional[str] = None, base_url: Optional[str] = None, *,
         judge_base_url: Optional[str] = None, judge_api_key: Optional[str] = None,
         judge_timeout: Optional[float] = None) -> None:
    """Set where results are uploaded and, optionally, which judge scores them.

    Args:
        api_key: your Fallom API key; None: ``FALLOM_API_KEY``, else the key given to
            ``fallom.init``. Results are uploaded only with a key.
        base_url: the Fallom API; None: ``FALLOM_BASE_URL``, else https://app.fallom.com.
        judge_base_url: an OpenAI-compatible API base (``http://localhost:11434/v1`` for
            Ollama); None: ``FALLOM_JUDGE_BASE_URL``, else OpenRouter.
        judge_api_key: the judge's key; None: ``FALLOM_JUDGE_API_KEY``, else (for
            OpenRouter only) ``OPENROUTER_API_KEY``. A local judge may need none.
        judge_timeout: seconds one judge request may take; None: 60, as 0.2.7.

    Raises:
        ValueError: no Fallom key anywhere and no judge setting given either (0.2.7's
            message), or a URL, key or timeout that is not one (the message names it).
    """
    global CONFIG
    key, key_name = _given(api_key, "api_key", "FALLOM_API_KEY")
    key = _ApiKey()(key or _runtime.STATE.settings.api_key, key_name) or None
    judge_given = any(v is not None for v in (judge_base_url, judge_api_key, judge_timeout))
    if key is None and not judge_given:
        raise ValueError(_NO_KEY)
    url, url_name = _given(base_url, "base_url", "FALLOM_BASE_URL")
    CONFIG = _Config(
        api_key=key, base_url=_URL(url or DEFAULT_BASE_URL, url_name),
        initialized=key is not None,
        judge_base_url=None if judge_base_url is None else _URL(judge_base_url,
                                                                "judge_base_url"),
        judge_api_key=_text(judge_api_key, "judge_api_key"),
        judge_timeout=_timeout(judge_timeout))


def reset() -> None:
    """Forget what ``init`` said (for tests)."""
    global CONFIG
    CONFIG = _Config()


def _given(value: Optional[str], name: str, variable: str) -> tuple[Optional[str], str]:
    """An argument, else its environment variable: the value and the name it came under."""
    if value is not None:
        return value, name
    found = os.environ.get(variable, "").strip()
    return (found or None), variable


def _text(value: Optional[str], name: str) -> Optional[str]:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    return value.strip() or None if value is not None else None


def _timeout(value: Optional[float]) -> float:
    if value is None:
        return _Config.judge_timeout
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"judge_timeout must be a positive number of seconds, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Judge:
    """The judge's endpoint for one run: where, with which key, how long to wait."""

    base_url: str
    api_key: Optional[str]
    timeout: float

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def headers(self) -> Dict[str, str]:
        """0.2.7's headers: the key as a bearer token (none for a judge without a key)."""
        if not self.api_key:
            return {"Content-Type": "application/json"}
        return {"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"}


def resolve_judge() -> Judge:
    """The judge of a run starting now: ``init``'s settings, else the environment's.

    Raises:
        ValueError: the judge is OpenRouter and no key for it is set anywhere, or
            ``FALLOM_JUDGE_BASE_URL`` is not an http(s) URL.
    """
    current = CONFIG
    url = current.judge_base_url
    if url is None:
        found, name = _given(None, "judge_base_url", "FALLOM_JUDGE_BASE_URL")
        url = _URL(found, name) if found else OPENROUTER_URL
    key = current.judge_api_key or _given(None, "", "FALLOM_JUDGE_API_KEY")[0]
    openrouter = urlsplit(url).hostname == _OPENROUTER_HOST
    if key is None and openrouter:
        key = _given(None, "", "OPENROUTER_API_KEY")[0]
        if key is None:
            raise ValueError(_NO_JUDGE_KEY)
    return Judge(url, key, current.judge_timeout)
