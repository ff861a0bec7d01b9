r"""Managed prompts: versioned templates and prompt A/B tests, from cache.

Templates use ``{{name}}`` (``{{\s*\w+\s*}}`` as the other Fallom SDKs, with
Python's Unicode ``\w``), substituted in one pass: a value containing ``{{x}}``
stays literal, an unknown name stays as written, values are rendered with
``str()`` (``True``, ``None``) as the published Python SDK does, and nothing
is ever evaluated. The prompt returned marks the
current context, so the next LLM span started there records which one it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from fallom import _sdk
from fallom.experiments import _stores
from fallom.experiments._assign import bucket, pick_by_bucket
from fallom.infra._guard import logger, report_internal_error
from fallom.tracing import _runtime
from fallom.tracing._context import CURRENT_PROMPT
from fallom.tracing._span import PromptMark

__all__ = ["Prompt", "PromptResult", "clear_prompt_context", "get", "get_ab",
           "get_prompt_context", "init", "render"]

_PLACEHOLDER = re.compile(r"\{\{(\s*\w+\s*)\}\}")
_unknown_reported: set[str] = set()


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt and where it came from.

    Attributes:
        key: the prompt's key.
        version: the version it was rendered from.
        system: the system message, variables filled in.
        user: the user message, variables filled in.
        ab_test_key: the A/B test that chose it (``get_ab``); None from ``get``.
        variant_index: which of that test's variants it is; None from ``get``.
    """

    key: str
    version: Any
    system: str
    user: str
    ab_test_key: Optional[str] = None
    variant_index: Optional[int] = None


def render(template: str, variables: Optional[Mapping[str, Any]]) -> str:
    """Substitute ``{{name}}`` once; unknown names stay as written.

    Args:
        template: the text holding ``{{name}}`` placeholders.
        variables: the values by name, each written as ``str(value)``; None: none,
            so the template comes back as written.

    Returns:
        The filled-in text. A value is never itself searched for placeholders.

    Raises:
        TypeError: ``template`` is not a string. Whatever a value's ``__str__``
            raises propagates.
    """
    values = variables or {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name in values:
            return str(values[name])
        if name not in _unknown_reported and len(_unknown_reported) < 1000:
            _unknown_reported.add(name)
            logger.debug("fallom: prompt variable %r was not given; left as written", name)
        return match.group(0)

    return _PLACEHOLDER.sub(replace, template)


def _template(key: str, version: Optional[int]) -> Any:
    experiments = _stores.current()
    if experiments is None:
        return None
    store = experiments.prompts
    return store.latest(key) if version is None else store.pinned(key, version)


def _variables(value: Any) -> Optional[Mapping[str, Any]]:
    if value is None or isinstance(value, Mapping):
        return value
    raise ValueError(f"variables must be a mapping of names to values, got {type(value).__name__}")


def _mark(prompt: Prompt) -> Prompt:
    CURRENT_PROMPT.set(PromptMark(prompt.key, prompt.version, prompt.ab_test_key,
                                  prompt.variant_index))
    return prompt


PromptResult = Prompt  # its name in fallom 0.2.x


def init(api_key: Optional[str] = None, base_url: Optional[str] = None) -> None:
    """Start managed prompts alone, as ``fallom.prompts.init`` of fallom 0.2.x does.

    ``fallom.init()`` does this and more; this keeps every other setting as it is.

    Args:
        api_key: the Fallom API key; None: as configured (or ``FALLOM_API_KEY``).
        base_url: where prompts are fetched from (``prompts_url``); None: as configured.

    Raises:
        ValueError: a wrong value, naming the parameter.
    """
    _sdk.init_part(api_key=api_key, prompts_url=base_url)


def get_prompt_context() -> Optional[Dict[str, Any]]:
    """The prompt the next LLM span in this context will record, as fallom 0.2.x shows it.

    Returns:
        ``{"prompt_key", "prompt_version", "ab_test_key", "variant_index"}``, or None
        when no prompt was fetched here since the last span took it.
    """
    mark = CURRENT_PROMPT.get()
    if mark is None or mark.used:
        return None
    return {"prompt_key": mark.key, "prompt_version": mark.version,
            "ab_test_key": mark.ab_test_key, "variant_index": mark.variant_index}


def clear_prompt_context() -> None:
    """Forget the prompt fetched in this context: the next LLM span records none."""
    CURRENT_PROMPT.set(None)


def get(prompt_key: str, variables: Optional[Mapping[str, Any]] = None,
        version: Optional[int] = None) -> Prompt:
    """The prompt ``prompt_key`` (latest, or ``version``) with ``variables`` filled in.

    The next LLM span started in this context records which prompt it used.

    Args:
        prompt_key: the prompt's key: a non-empty string.
        variables: values for its ``{{name}}`` placeholders (see :func:`render`);
            None: none.
        version: a pinned version (a whole number, or its digits as a string);
            None: the latest.

    Returns:
        The rendered :class:`Prompt`.

    Raises:
        ValueError: the prompt (or that ``version``) is not available, naming the key
            (and saying so when ``init()`` was not called), or an argument has the
            wrong type. A failure inside fallom is logged once and treated as
            "not available".
    """
    if type(prompt_key) is not str or not prompt_key:  # checks cost a call only when wrong
        _stores.required(prompt_key, "prompt_key")
    if variables is not None and type(variables) is not dict:
        variables = _variables(variables)
    if version is not None:
        version = _stores.version_number(version)
    template = None
    try:
        template = _template(prompt_key, version)
    except Exception as exc:
        report_internal_error(exc, "prompts.get")
    if template is None:
        pinned = "" if version is None else f" version {version}"
        raise ValueError(f"no prompt {prompt_key!r}{pinned} is available{_why_none()}")
    return _mark(Prompt(template.key, template.version, render(template.system, variables),
                        render(template.user, variables)))


def get_ab(ab_test_key: str, session_id: str,
           variables: Optional[Mapping[str, Any]] = None) -> Prompt:
    """The prompt this session gets in A/B test ``ab_test_key`` (sticky per session).

    The next LLM span started in this context records the prompt and its variant.

    Args:
        ab_test_key: the A/B test's key: a non-empty string.
        session_id: what the variant is drawn from, so a session keeps its variant: a
            string ("" too).
        variables: values for the prompt's ``{{name}}`` placeholders (see
            :func:`render`); None: none.

    Returns:
        The rendered :class:`Prompt`, with ``ab_test_key`` and ``variant_index`` set.

    Raises:
        ValueError: the test or its variant's prompt is not available (said as
            :func:`get` says it), or an argument has the wrong type.
    """
    _stores.required(ab_test_key, "ab_test_key")
    _stores.required(session_id, "session_id", empty=True)
    variables = _variables(variables)
    found: Optional[Prompt] = None
    try:
        experiments = _stores.current()
        test = experiments.ab_tests.latest(ab_test_key) if experiments is not None else None
        if test is not None:
            index = pick_by_bucket(test.weights, bucket(session_id))
            variant = test.variants[index]
            template = _template(variant["prompt_key"], variant.get("prompt_version"))
            if template is not None:
                found = Prompt(template.key, template.version,
                               render(template.system, variables),
                               render(template.user, variables), ab_test_key, index)
    except Exception as exc:
        report_internal_error(exc, "prompts.get_ab")
    if found is None:
        raise ValueError(f"no prompt A/B test {ab_test_key!r} (or its prompt) is available"
                         f"{_why_none()}")
    return _mark(found)


def _why_none() -> str:
    """Before ``init()`` no prompt can be known: say so, not just that this one is missing."""
    if _runtime.STATE.initialized:
        return ""
    return ": fallom.init() was not called (prompts are fetched from prompts_url once it is)"
