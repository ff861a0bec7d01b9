"""The web UI's span tree (``spanTree`` in app.js, run by Node as shipped): a parent chain
thousands deep and spans whose parent links form a cycle are all shown (issue 24, point 13).

The page's other behaviour is checked in a real browser by test_web_ui.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from typing import Any, Dict, List, Optional

import pytest

NODE = shutil.which("node") or shutil.which("nodejs")
pytestmark = pytest.mark.skipif(NODE is None, reason="needs Node.js to run app.js")

# app.js as the page loads it, with just enough of a browser for its start-up to wait on
# a request that never answers; then spanTree on the spans read from stdin.
RUN = """
const vm = require("vm");
const noop = () => {};
const page = { document: { getElementById: () => null, querySelectorAll: () => [] },
  window: { addEventListener: noop }, location: { hash: "#/prompts" },
  sessionStorage: { getItem: () => null }, fetch: () => new Promise(noop),
  clearInterval: noop, setInterval: noop, performance: { now: () => 0 } };
vm.createContext(page);
vm.runInContext(require("fs").readFileSync(process.argv[1], "utf8"), page);
const spans = JSON.parse(require("fs").readFileSync(0, "utf8"));
const rows = page.spanTree(spans);
console.log(JSON.stringify(rows.map(([span, depth, again]) => [span.name, depth, again])));
"""


def span_tree(spans: List[Dict[str, Any]]) -> List[List[Any]]:
    app = resources.files("fallom.server") / "ui" / "app.js"
    with resources.as_file(app) as path:
        done = subprocess.run([str(NODE), "-e", RUN, str(path)], input=json.dumps(spans),
                              capture_output=True, text=True, timeout=60, check=True)
    rows: List[List[Any]] = json.loads(done.stdout)
    return rows


def span(i: int, parent: Optional[int]) -> Dict[str, Any]:
    linked = {} if parent is None else {"parent_span_id": f"{parent:016x}"}
    return {"span_id": f"{i:016x}", "name": f"s{i}", **linked,
            "start_time": f"2026-01-01T00:00:00.{i:06d}Z"}


def test_a_chain_far_deeper_than_the_stack_is_shown_in_order() -> None:
    rows = span_tree([span(i, i - 1 if i > 1 else None) for i in range(1, 20_001)])
    assert rows == [[f"s{i}", i - 1, False] for i in range(1, 20_001)]


def test_a_cycle_is_shown_and_cut_where_a_span_repeats() -> None:
    # s1 a root with child s2; s3 -> s4 -> s5 -> s3 a cycle, s6 hangs from s5; s7 its own parent
    spans = [span(1, None), span(2, 1), span(3, 5), span(4, 3), span(5, 4), span(6, 5),
             span(7, 7)]
    assert span_tree(spans) == [
        ["s1", 0, False], ["s2", 1, False],
        ["s3", 0, False], ["s4", 1, False], ["s5", 2, False], ["s3", 3, True], ["s6", 3, False],
        ["s7", 0, False], ["s7", 1, True]]
