"""The shape of the package: layers that import only downward, and no import cycle.

docs/design.md §2 lists the layers; setup.cfg holds the import-linter contract that
enforces them. The cycle check covers every import fallom's modules make, lazy
ones inside functions included; only ``if TYPE_CHECKING:`` imports, which never
run, are left out.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
from typing import Dict, List, Set

import pytest

import fallom

grimp = pytest.importorskip("grimp", reason="the dev extra installs import-linter")

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _cycles(graph: object) -> List[List[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    imports: Dict[str, Set[str]] = {
        m: set(graph.find_modules_directly_imported_by(m))  # type: ignore[attr-defined]
        for m in graph.modules  # type: ignore[attr-defined]
    }
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []
    for root in sorted(imports):
        if root in index:
            continue
        work = [(root, iter(sorted(imports[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(imports.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _graph() -> object:
    return grimp.build_graph("fallom", exclude_type_checking_imports=True, cache_dir=None)


def test_no_module_of_fallom_imports_one_that_imports_it_back() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_check_finds_a_cycle_closed_by_one_lazy_import() -> None:
    graph = _graph()
    # what `from fallom._sdk import flush` inside a tracing function would add
    graph.add_import(  # type: ignore[attr-defined]
        importer="fallom.tracing._runtime", imported="fallom._sdk")
    cycles = _cycles(graph)
    assert len(cycles) == 1
    assert {"fallom._sdk", "fallom.tracing._runtime"} <= set(cycles[0])


def test_the_layer_contract_is_kept() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
         "sys.exit(lint_imports(no_cache=True))"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


def test_every_folder_says_what_it_owns_and_may_import() -> None:
    for init in sorted((ROOT / "fallom").glob("*/__init__.py")):
        doc = init.read_text().partition('"""')[2].partition('"""')[0]
        assert len(doc.split()) >= 12, f"{init.parent.name}/__init__.py needs its docstring"


@pytest.mark.parametrize("name", sorted(set(fallom.__all__) - {"__version__", "models", "extractors", "trace", "evals",
                                                                  "prompts", "FallomExporter"}))
def test_public_objects_report_the_package_they_are_used_from(name: str) -> None:
    assert getattr(fallom, name).__module__ == "fallom"


def test_every_design_section_the_code_cites_exists() -> None:
    import re

    headings = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ",
                              (ROOT / "docs" / "design.md").read_text(encoding="utf-8"), re.M))
    cited = {(path.name, section)
             for folder in ("fallom", "tests") for path in (ROOT / folder).rglob("*.py")
             for section in re.findall(r"docs/design\.md §(\d+(?:\.\d+)?)", path.read_text())}
    assert cited, "the code cites the design document"
    assert {(name, s) for name, s in cited if s not in headings} == set()
