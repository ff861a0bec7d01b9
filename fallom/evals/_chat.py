"""The OpenAI chat-completions answer, as the judge and the models give it.

One reader for both, tolerant of what OpenAI-compatible servers leave out
(``usage``, a ``total_cost`` only OpenRouter sends).
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Optional, cast

from fallom.protocol._fields import token_count
from fallom.protocol._wire import is_number

__all__ = ["Usage", "as_number", "message_content", "usage_of"]


class Usage(NamedTuple):
    """Tokens in and out and the cost, each None when the answer does not say."""

    tokens_in: Optional[int] = None
    tokens_out: Optional[int] = None
    cost: Optional[float] = None


def message_content(data: Any) -> str:
    """The text of ``choices[0].message.content``.

    Raises:
        ValueError: the answer has no such text (the message says what it lacks).
    """
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ValueError("the answer has no choices[0].message.content") from None
    if not isinstance(content, str):
        raise ValueError(f"choices[0].message.content is {type(content).__name__}, not text")
    return content


def usage_of(data: Any) -> Usage:
    """The answer's ``usage``: prompt and completion tokens, OpenRouter's ``total_cost``."""
    usage = data.get("usage") if isinstance(data, Mapping) else None
    if not isinstance(usage, Mapping):
        return Usage()
    return Usage(token_count(usage.get("prompt_tokens")),
                 token_count(usage.get("completion_tokens")), as_number(usage.get("total_cost")))


def as_number(value: Any) -> Optional[float]:
    """A finite number as a float (a cost, a score); None for anything else."""
    return float(cast(float, value)) if is_number(value) else None
