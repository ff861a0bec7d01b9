"""Every public function and method says what it takes and gives (issue #25).

Public: what the user-facing modules' ``__all__`` reach, and the public methods of
those classes and of the fallom classes they inherit from. Each needs a docstring;
one that takes parameters needs an ``Args:`` section naming each (``*args`` and
``**kwargs`` as written); one that returns something needs ``Returns:`` (or
``Yields:``). A class built by hand says its constructor's parameters too. Dunder
methods and properties are left out, as ``help()`` shows them apart.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import sys
from types import ModuleType
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

import pytest

import fallom
from fallom.testing import CapturedSpans

MODULES = [
    "fallom", "fallom.models", "fallom.prompts", "fallom.testing", "fallom.console",
    "fallom.extractors", "fallom.exporters", "fallom.server", "fallom.integrations.langchain",
    "fallom.trace", "fallom.evals",
]

_ENTRY = re.compile(r"^    (\*{0,2}\w+)( \([^)]*\))?:", re.MULTILINE)
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
_SECTION = re.compile(r"^(\w[\w ]*):\s*$", re.MULTILINE)


def _sections(doc: str) -> Dict[str, str]:
    """A cleaned docstring's Google-style sections, by title, each with its body."""
    heads = list(_SECTION.finditer(doc))
    return {m.group(1): doc[m.end():heads[i + 1].start() if i + 1 < len(heads) else len(doc)]
            for i, m in enumerate(heads)}


def _parameters(func: Callable[..., Any], bound: bool) -> List[str]:
    """Its parameters as an ``Args:`` section names them; ``bound`` drops self or cls."""
    params = list(inspect.signature(func).parameters.values())
    if bound:
        params = params[1:]
    stars = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
    return [stars.get(p.kind, "") + p.name for p in params]


def _returns(func: Callable[..., Any]) -> bool:
    annotation = inspect.signature(func).return_annotation
    return annotation not in (None, "None", inspect.Signature.empty)


class Check(NamedTuple):
    doc: str  # as help() shows it: an override without its own shows its base's
    gaps: List[str]  # what it leaves unsaid


def _check(doc: Optional[str], params: List[str], returns: bool) -> Check:
    """What ``doc`` leaves unsaid: the docstring itself, a parameter, the return."""
    if not doc:
        return Check("", ["a docstring"])
    sections = _sections(doc)
    named = {m.group(1) for m in _ENTRY.finditer(sections.get("Args", ""))}
    gaps = [f"Args: {p}" for p in params if p not in named]
    if returns and not ({"Returns", "Yields"} & set(sections)):
        gaps.append("Returns:")
    return Check(doc, gaps)


def _is_fallom(owner: Any) -> bool:
    """Defined in fallom: not a base from the standard library or LangChain."""
    return str(owner.__module__).split(".")[0] == "fallom"


def _public() -> Tuple[Dict[str, Callable[..., Any]], Dict[type, str]]:
    functions: Dict[str, Callable[..., Any]] = {}
    classes: Dict[type, str] = {}
    for module_name in MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # an extra not installed (langchain)
            continue
        for name in module.__all__:
            try:
                value = getattr(module, name)
            except ImportError:  # an extra not installed (FallomExporter: otel)
                continue
            if isinstance(value, ModuleType):
                continue
            if inspect.isclass(value):
                classes.setdefault(value, f"{module_name}.{name}")
            elif inspect.isfunction(value):
                functions.setdefault(f"{module_name}.{name}", value)
    return functions, classes


def _checks() -> Dict[str, Check]:
    """Every public name, with its docstring and what it leaves unsaid."""
    functions, classes = _public()
    found = {name: _check(inspect.getdoc(f), _parameters(f, False), _returns(f))
             for name, f in functions.items()}
    seen: set[int] = set()
    for cls, path in list(classes.items()):
        found[path] = _check(inspect.getdoc(cls), [], False)
        init = vars(cls).get("__init__")
        if inspect.isfunction(init) and _is_fallom(init) and not dataclasses.is_dataclass(cls):
            doc = "\n".join(filter(None, (inspect.getdoc(cls), inspect.getdoc(init))))
            found[f"{path}()"] = _check(doc, _parameters(init, True), False)
        for owner in filter(_is_fallom, cls.__mro__):
            for name, member in vars(owner).items():
                if name.startswith("_") or isinstance(member, property):
                    continue
                func = getattr(member, "__func__", member)
                if not inspect.isfunction(func) or id(func) in seen:
                    continue
                seen.add(id(func))
                if func.__doc__ is None and not all(
                        _is_fallom(base) for base in cls.__mro__[1:] if name in vars(base)):
                    continue  # a framework's method kept with its own docs (LangChain's on_*),
                    # which vary with the framework's release: not fallom's to check
                bound = not isinstance(member, staticmethod)
                doc = inspect.getdoc(getattr(cls, name))  # an override inherits its base's
                found[f"{classes.get(owner, path)}.{name}"] = _check(
                    doc, _parameters(func, bound), _returns(func))
    return found


CHECKS = _checks()


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_public_callable_says_its_parameters_and_return(name: str) -> None:
    gaps = CHECKS[name].gaps
    assert not gaps, f"{name}'s docstring lacks: {', '.join(gaps)}"


def test_docstrings_hold_no_control_characters() -> None:
    """``help()`` prints them: an escape written unescaped (``\\x1b`` in a plain
    string) would be sent to the reader's terminal."""
    docs = {name: check.doc for name, check in CHECKS.items()}
    docs.update((name, sys.modules[name].__doc__ or "") for name in MODULES
                if name in sys.modules)
    assert [name for name, doc in docs.items() if _CONTROL.search(doc)] == []


def test_the_errors_said_are_the_errors_raised() -> None:
    """A few Raises: sections, checked against the code they describe."""
    with pytest.raises(ValueError, match="span name"):
        fallom.span("")
    with pytest.raises(ValueError, match="config_key"):
        fallom.session("", "s")
    with pytest.raises(TypeError, match="result_type must be a type"):
        fallom.extractors.lookup(5)  # type: ignore[arg-type]
    assert fallom.extractors.lookup(dict) is not None  # plain dicts have a reader
    with pytest.raises(TypeError, match="cannot trace"):
        fallom.session("k", "s").wrap_openai(object())
    with pytest.raises(AssertionError, match="found 0"):
        CapturedSpans().by_name("absent")
    with pytest.raises(ValueError, match="no fallback"):
        fallom.models.get("absent", "s")


def test_the_walk_reaches_the_public_surface() -> None:
    """A walk that found nothing would pass every check above."""
    for name in ("fallom.trace_llm", "fallom.Span.set_attribute", "fallom.FallomSession()",
                 "fallom.FallomSession.wrap_openai", "fallom.testing.CapturedSpans.by_name",
                 "fallom.exporters.InMemoryExporter.export", "fallom.server.FallomServer.start",
                 "fallom.extractors.lookup", "fallom.span()"):
        assert name in CHECKS, name
