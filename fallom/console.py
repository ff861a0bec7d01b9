"""Render trace records as ``rich`` trees: debug mode and the local trace viewer.

User text (names, prompts, errors) is only ever put in ``Text`` objects, so a
prompt containing ``[/bold]`` prints as written, and its control characters
are shown escaped (``\x1b``), so a stored record cannot drive the terminal
(clear it, retitle it, hide text with ``\r``). Lines are cut at the terminal
width, never wrapped.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, Dict, Iterable, List, Mapping, Optional, TextIO

from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from ._wire import RecordView

__all__ = ["clean", "preview", "print_traces", "render_traces"]

Record = Mapping[str, Any]
PREVIEW_CHARS = 60


# C0 and C1 controls, DEL, and the bidirectional overrides that reorder what is shown
_CONTROLS = [*range(0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_ESCAPED = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _CONTROLS}
_ESCAPED_BUT_LINES = {c: text for c, text in _ESCAPED.items() if c != ord("\n")}


def clean(text: Any, lines: bool = False) -> str:
    """``text`` with control characters written out; ``lines`` keeps line breaks."""
    return str(text).translate(_ESCAPED_BUT_LINES if lines else _ESCAPED)


def _duration(ms: Any) -> str:
    if not isinstance(ms, (int, float)):
        return "?"
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.1f} ms"


def cut(text: str, width: int, more: str) -> str:
    """``text`` in at most ``width`` characters, ``more`` marking where it was cut."""
    return text if len(text) <= width else text[: max(0, width - len(more))] + more


def is_unicode(console: Console) -> bool:
    """Whether ``console`` can print more than ASCII."""
    return console.encoding.lower().replace("-", "").startswith("utf")


def ascii_only(line: Text) -> Text:
    """``line`` for a console that can only encode ASCII: user text may hold anything."""
    return Text(line.plain.encode("ascii", "replace").decode("ascii"), style=line.style,
                no_wrap=True, overflow="ellipsis")


def preview(value: Any, more: str) -> str:
    """``value`` on one line of at most ``PREVIEW_CHARS``, control characters written out."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                            default=str, separators=(",", ":"))
    return cut(clean(" ".join(text.split())), PREVIEW_CHARS, more)


class _Glyphs:
    def __init__(self, unicode: bool) -> None:
        self.dot, self.arrow, self.more = (" · ", " → ", "…") if unicode else (" | ", " -> ", "...")


def _full(value: Any) -> str:
    if isinstance(value, str):
        return clean(value, lines=True)
    return clean(json.dumps(value, ensure_ascii=False, default=str, indent=2), lines=True)


def _label(record: Record, *, root: bool, unfinished: bool, glyphs: _Glyphs,
           full: bool = False) -> Text:
    view = RecordView(record)
    failed = record.get("status") == "ERROR"
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(clean(record.get("name", "?")), style="bold red" if failed else "bold")
    line.append(f" ({clean(record.get('kind', 'span'))}) ", style="dim")
    line.append(_duration(view.duration_ms))
    line.append(" ")
    line.append("ERROR" if failed else "OK", style="red" if failed else "green")
    dot = glyphs.dot
    details: List[str] = []
    if record.get("model"):
        details.append(str(record["model"]))
    tokens = view.usage
    if any(t is not None for t in tokens):
        details.append("tokens " + "/".join("-" if t is None else str(t) for t in tokens))
    if view.time_to_first_token_ms is not None:
        details.append(f"ttft {_duration(view.time_to_first_token_ms)}")
    if root and record.get("session_id") != record.get("trace_id"):  # a session was open
        for key, title in (("session_id", "session"), ("customer_id", "customer"),
                           ("config_key", "config")):
            if record.get(key):
                details.append(f"{title} {record[key]}")
    if details:
        line.append(clean(dot + dot.join(details)), style="cyan")
    if failed and record.get("error_message"):
        line.append(dot + clean(record["error_message"]), style="red")
    if unfinished:
        line.append(" (unfinished trace)", style="yellow")
    parts = []
    if full:  # whole values, each on its own lines
        for title, present, value in (("input", view.has_input, view.input),
                                      ("output", view.has_output, view.output)):
            if present:
                line.append(f"\n{title}:\n", style="dim bold")
                line.append(_full(value))
    elif view.has_input:
        parts.append(f"in {preview(view.input, glyphs.more)}")
    if view.has_output and not full:
        parts.append(f"out {preview(view.output, glyphs.more)}")
    if parts:
        line.append("\n")
        line.append("  " + glyphs.arrow.join(parts), style="dim")
    return line if glyphs.more != "..." else ascii_only(line)


def render_traces(records: Iterable[Record], *, unfinished: bool = False,
                  unicode: bool = True, full: bool = False) -> List[Tree]:
    """One tree per trace; spans whose parent is absent become roots of their own.

    ``unicode=False`` keeps every character ASCII, for consoles that cannot
    encode more (rich then draws ASCII guides too).
    """
    glyphs = _Glyphs(unicode)
    records = list(records)
    ids = {r.get("span_id") for r in records}
    children: Dict[Optional[str], List[Record]] = defaultdict(list)
    roots: List[Record] = []
    for record in sorted(records, key=lambda r: str(r.get("start_time", ""))):
        parent = record.get("parent_span_id")
        if parent and parent in ids:
            children[parent].append(record)
        else:
            roots.append(record)

    def build(tree: Tree, record: Record) -> None:
        for child in children.get(record.get("span_id"), []):
            build(tree.add(_label(child, root=False, unfinished=False, glyphs=glyphs,
                                  full=full)), child)

    trees = []
    for root in roots:
        tree = Tree(_label(root, root=True, unfinished=unfinished, glyphs=glyphs, full=full),
                    guide_style="dim")
        build(tree, root)
        trees.append(tree)
    return trees


def print_traces(records: Iterable[Record], console: Optional[Console] = None, *,
                 unfinished: bool = False, full: bool = False) -> None:
    """Print ``records`` as trees (to stderr unless a console is given); ``full`` prints
    whole inputs and outputs, wrapped, instead of one-line previews."""
    console = console or make_console()
    for tree in render_traces(records, unfinished=unfinished, unicode=is_unicode(console),
                              full=full):
        console.print(tree, crop=not full, soft_wrap=False, overflow="ellipsis",
                      no_wrap=not full)


def make_console(file: Optional[TextIO] = None, width: Optional[int] = None) -> Console:
    """stderr (or ``file``), colour only on a terminal (rich honours ``NO_COLOR``),
    no markup."""
    return Console(file=file, stderr=file is None, width=width, markup=False, highlight=False,
                   emoji=False, soft_wrap=False)
