"""The web UI's span tree (``spanTree`` in ui/tree.js, run by Node as shipped): a parent chain
thousands deep and spans whose parent links form a cycle are all shown (issue 24, point 13).

The page's other behaviour is checked in a real browser by test_web_ui.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

NODE = shutil.which("node") or shutil.which("nodejs")
pytestmark = pytest.mark.skipif(NODE is None, reason="needs Node.js to run ui/tree.js")

# tree.js as shipped, an ES module with no DOM: copied beside its one import as .mjs files
# (Node 20 reads .js as CommonJS), then spanTree on the spans read from stdin.
RUN = """
const fs = require("fs");
const spans = JSON.parse(fs.readFileSync(0, "utf8"));
import(require("url").pathToFileURL(process.argv[1]).href).then(({ spanTree }) => {
  const rows = spanTree(spans);
  console.log(JSON.stringify(rows.map(([span, depth, again]) => [span.name, depth, again])));
});
"""


def span_tree(spans: List[Dict[str, Any]], tmp_path: Path) -> List[List[Any]]:
    ui = resources.files("fallom.server") / "ui"
    for name in ("tree.js", "format.js"):
        text = (ui / name).read_text(encoding="utf-8").replace('.js";', '.mjs";')
        (tmp_path / name.replace(".js", ".mjs")).write_text(text, encoding="utf-8")
    done = subprocess.run([str(NODE), "-e", RUN, str(tmp_path / "tree.mjs")],
                          input=json.dumps(spans), capture_output=True, text=True, timeout=60,
                          check=True)
    rows: List[List[Any]] = json.loads(done.stdout)
    return rows


def span(i: int, parent: Optional[int]) -> Dict[str, Any]:
    linked = {} if parent is None else {"parent_span_id": f"{parent:016x}"}
    return {"span_id": f"{i:016x}", "name": f"s{i}", **linked,
            "start_time": f"2026-01-01T00:00:00.{i:06d}Z"}


def test_a_chain_far_deeper_than_the_stack_is_shown_in_order(tmp_path: Path) -> None:
    rows = span_tree([span(i, i - 1 if i > 1 else None) for i in range(1, 20_001)], tmp_path)
    assert rows == [[f"s{i}", i - 1, False] for i in range(1, 20_001)]


def test_a_cycle_is_shown_and_cut_where_a_span_repeats(tmp_path: Path) -> None:
    # s1 a root with child s2; s3 -> s4 -> s5 -> s3 a cycle, s6 hangs from s5; s7 its own parent
    spans = [span(1, None), span(2, 1), span(3, 5), span(4, 3), span(5, 4), span(6, 5),
             span(7, 7)]
    assert span_tree(spans, tmp_path) == [
        ["s1", 0, False], ["s2", 1, False],
        ["s3", 0, False], ["s4", 1, False], ["s5", 2, False], ["s3", 3, True], ["s6", 3, False],
        ["s7", 0, False], ["s7", 1, True]]
