"""The registry of result extractors, and copying what one read onto a span.

Tracing looks an extractor up by the result's type on every traced call, so
the registry lives here, below the providers; ``fallom.extractors`` (the public
module) registers the providers' readers at import.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional, Union

from fallom.infra._guard import report_internal_error
from fallom.protocol._capture import snapshot
from fallom.tracing import _runtime

__all__ = ["Extractor", "apply", "extract", "lookup", "register", "register_builtins"]

Extractor = Callable[[Any], Optional[Mapping[str, Any]]]

_BY_TYPE: Dict[type, Extractor] = {}
_BY_NAME: Dict[str, Extractor] = {}


_CACHE_SIZE = 1024


class _Cache(Dict[type, Optional[Extractor]]):
    """Extractors by result type, found through the type's MRO on first sight.

    Bounded: a program that makes classes as it runs (a model class per
    request) must not have every one of them kept alive here.
    """

    def __missing__(self, kind: type) -> Optional[Extractor]:
        if len(self) >= _CACHE_SIZE:
            self.clear()
        found: Optional[Extractor] = None
        for klass in kind.__mro__:
            found = _BY_TYPE.get(klass) or _BY_NAME.get(f"{klass.__module__}.{klass.__qualname__}")
            if found is not None:
                break
        self[kind] = found
        return found


_CACHE = _Cache()


def register(target: Union[type, str], extractor: Extractor) -> None:
    """Use ``extractor`` for results of ``target`` and of its subclasses.

    Args:
        target: a type, or its ``"module.QualName"`` (so its library need not be
            imported). It replaces any extractor registered for the same target.
        extractor: a ``(result) -> dict`` of record fields (see ``fallom.extractors``)
            that returns None for a result it cannot read. Traced calls may run it
            later, on the export path; when it raises, that is logged, never raised
            into the traced call.

    Raises:
        TypeError: ``extractor`` is not callable, or ``target`` is neither a type nor
            a string.
    """
    if not callable(extractor):
        raise TypeError(f"extractor must be callable, got {extractor!r}")
    if isinstance(target, str):
        _BY_NAME[target] = extractor
    elif isinstance(target, type):
        _BY_TYPE[target] = extractor
    else:
        raise TypeError(f"target must be a type or 'module.QualName', got {target!r}")
    _CACHE.clear()


# The extractor for results of a type, or None: the cache's own ``__getitem__``, so a
# known type (every call after the first) costs a dict lookup and no Python frame.
lookup: Callable[[type], Optional[Extractor]] = _CACHE.__getitem__


def extract(result: Any) -> Optional[Mapping[str, Any]]:
    """Record fields read from ``result`` by the extractor registered for its type.

    Args:
        result: what an LLM call returned.

    Returns:
        The fields (``model``, ``prompt_tokens``, ``output``, ...), or None when no
        extractor is registered for its type, or the extractor read nothing.

    Raises:
        Whatever the extractor raises: called here directly, it is not guarded (the
        built-in readers tolerate any shape).
    """
    extractor = lookup(type(result))
    if extractor is None:
        return None
    return extractor(result)


def register_builtins(by_name: Mapping[str, Extractor], for_dicts: Extractor) -> None:
    """The providers' readers, by ``"module.QualName"`` (no SDK imported), and plain dicts'."""
    _BY_NAME.update(by_name)
    _BY_TYPE[dict] = for_dicts
    _CACHE.clear()


_USAGE = ("prompt_tokens", "completion_tokens", "total_tokens")


def apply(span: Any, fields: Mapping[str, Any], *, capture_output: bool = True) -> None:
    """Copy extracted ``fields`` onto ``span``; unknown keys become attributes.

    Args:
        span: the span to write to (``fallom.current_span()`` inside a traced call).
        fields: record fields as an extractor returns them; None values are skipped.
        capture_output: copy ``output`` and ``raw_response`` too (default True).

    Never raises: a failure is logged once and the remaining fields are dropped.
    """
    try:
        runtime = getattr(span, "_rt", None)  # the span's own limits, not the default ones
        limits = runtime.limits if runtime is not None else _runtime.STATE.limits
        for key, value in fields.items():
            if value is None:
                continue
            if key == "model":
                span.set_model(value)
            elif key in _USAGE:
                span.record_usage(**{key: value})
            elif key == "output":
                if capture_output:
                    span.set_output(value)
            elif key == "raw_response":
                if capture_output:
                    span.raw_response = snapshot(value, limits)
            elif key == "raw_usage":
                span.raw_usage = snapshot(value, limits)
            elif key == "input":
                span.set_input(value)
            elif key == "attributes":
                span.set_attributes(value)
            elif key == "provider":
                span.set_attribute("gen_ai.provider.name", value)
            elif key == "finish_reason":
                span.set_attribute("gen_ai.response.finish_reasons", value)
            elif key == "response_id":
                span.set_attribute("gen_ai.response.id", value)
            else:
                span.set_attribute(key, value)
    except Exception as exc:
        report_internal_error(exc, "extractors.apply")
