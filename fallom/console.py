r"""Render trace records as ``rich`` trees: debug mode and the local trace viewer.

User text (names, prompts, errors) is only ever put in ``Text`` objects, so a
prompt containing ``[/bold]`` prints as written, and its control characters
are shown escaped (``\x1b``), so a stored record cannot drive the terminal
(clear it, retitle it, hide text with ``\r``). Lines are cut at the terminal
width, never wrapped.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, TextIO

from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from fallom.protocol._wire import RecordView

__all__ = ["clean", "preview", "print_traces", "render_traces"]

Record = Mapping[str, Any]
PREVIEW_CHARS = 60


# C0 and C1 controls, DEL, and the bidirectional overrides that reorder what is shown
_CONTROLS = [*range(0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_ESCAPED = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _CONTROLS}
_ESCAPED_BUT_LINES = {c: text for c, text in _ESCAPED.items() if c != ord("\n")}


def clean(text: Any, lines: bool = False) -> str:
    """``text`` with control characters written out, so it cannot drive a terminal.

    Args:
        text: anything; it is shown as ``str(text)``.
        lines: keep line breaks (``\\n``) as they are (default False: written out).

    Returns:
        The text, each control or bidirectional-override character as ``\\xNN`` or
        ``\\uNNNN``.

    Raises:
        Whatever ``str(text)`` raises propagates.
    """
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
    """``value`` on one line of at most ``PREVIEW_CHARS``, control characters written out.

    Args:
        value: a string, shown as is, or anything else, shown as compact JSON
            (``str()`` for what JSON cannot hold).
        more: the mark that ends a cut line (``…``, or ``...`` for ASCII consoles).

    Returns:
        The one-line preview, runs of whitespace folded to one space.
    """
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                            default=str, separators=(",", ":"))
    return cut(clean(" ".join(text.split())), PREVIEW_CHARS, more)


class _Glyphs:
    def __init__(self, unicode: bool) -> None:
        self.dot, self.arrow, self.more = (" · ", " → ", "…") if unicode else (" | ", " -> ", "...")
        self.again = "↻ " if unicode else "(again) "


def _full(value: Any) -> str:
    if isinstance(value, str):
        return clean(value, lines=True)
    return clean(json.dumps(value, ensure_ascii=False, default=str, indent=2), lines=True)


def _label(record: Record, *, root: bool, glyphs: _Glyphs, full: bool = False,
           note: Optional[Text] = None) -> Text:
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
    if note is not None:  # the trace is unfinished, or cut
        line.append_text(note)
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


MAX_DEPTH = 32  # levels drawn in one tree; deeper spans continue in a tree of their own


def render_traces(records: Iterable[Record], *, unfinished: bool = False,
                  unicode: bool = True, full: bool = False,
                  max_depth: int = MAX_DEPTH) -> List[Tree]:
    """One tree per trace; spans whose parent is absent become roots of their own.

    Built without recursion, whatever the depth: a subtree deeper than ``max_depth``
    levels continues in a tree of its own, after this one. Spans whose parent links form
    a cycle are shown from one span of the cycle, and cut where a span would repeat.

    Args:
        records: the wire records, of one trace or many, in any order.
        unfinished: mark each root "(unfinished trace)", for traces still running.
        unicode: False keeps every character ASCII, for consoles that cannot encode
            more (rich then draws ASCII guides too).
        full: show whole inputs and outputs on lines of their own, not one-line
            previews.
        max_depth: levels drawn in one tree (at least 1; default ``MAX_DEPTH``).

    Returns:
        The ``rich`` trees, roots in start-time order; empty for no records.
    """
    return _Forest(list(records), _Glyphs(unicode), full, max(1, max_depth)).trees(unfinished)


class _Forest:
    """The trees of a set of spans, linked by parent span id."""

    def __init__(self, records: List[Record], glyphs: _Glyphs, full: bool,
                 max_depth: int) -> None:
        self.glyphs, self.full, self.max_depth = glyphs, full, max_depth
        self.records = sorted(records, key=lambda r: str(r.get("start_time", "")))
        self.by_id = {r.get("span_id"): r for r in self.records}
        self.children: Dict[Any, List[Record]] = defaultdict(list)
        self.roots: List[Record] = []
        for record in self.records:
            parent = record.get("parent_span_id")
            if parent and parent in self.by_id:
                self.children[parent].append(record)
            else:
                self.roots.append(record)
        self.shown: Set[int] = set()

    def trees(self, unfinished: bool) -> List[Tree]:
        trees: List[Tree] = []
        for root in self.roots:
            trees += self._grow(root, Text(" (unfinished trace)", style="yellow")
                                if unfinished else None)
        for record in self.records:  # what is left hangs from a cycle of parent links
            if id(record) not in self.shown:
                trees += self._grow(self._on_cycle(record), Text(
                    " (its parent links form a cycle)", style="yellow"))
        return trees

    def _on_cycle(self, record: Record) -> Record:
        """A span of the cycle ``record`` hangs from, found by following parents."""
        seen: Set[int] = set()
        at = record
        while id(at) not in seen:
            seen.add(id(at))
            parent = self.by_id.get(at.get("parent_span_id"))
            if parent is None or id(parent) in self.shown:
                return record
            at = parent
        return at

    def _grow(self, start: Record, note: Optional[Text]) -> List[Tree]:
        """``start``'s tree, then a tree for each subtree cut at the depth limit."""
        trees: List[Tree] = []
        pending = [(start, 0, note)]
        while pending:
            record, depth, note = pending.pop(0)
            tree = Tree(self._label(record, root=depth == 0, note=note), guide_style="dim")
            trees.append(tree)
            self.shown.add(id(record))
            stack = [(tree, record, 0)]
            while stack:
                node, parent, level = stack.pop()
                kids = self.children.get(parent.get("span_id"), [])
                if kids and level + 1 >= self.max_depth:
                    node.add(Text(f"{self.glyphs.more} continues below", style="dim"))
                    pending.append((parent, depth + level, Text(
                        f" (continued from above, depth {depth + level})", style="dim")))
                    continue
                grown = []
                for child in kids:
                    if id(child) in self.shown:  # a cycle: cut where the span repeats
                        node.add(self._again(child))
                        continue
                    self.shown.add(id(child))
                    grown.append((node.add(self._label(child, root=False)), child, level + 1))
                stack.extend(reversed(grown))
        return trees

    def _label(self, record: Record, root: bool, note: Optional[Text] = None) -> Text:
        return _label(record, root=root, glyphs=self.glyphs, full=self.full, note=note)

    def _again(self, record: Record) -> Text:
        line = Text(f"{self.glyphs.again}{clean(record.get('name', '?'))}: shown above "
                    "(the parent links form a cycle)", style="yellow", no_wrap=True,
                    overflow="ellipsis")
        return line if self.glyphs.more != "..." else ascii_only(line)


def print_traces(records: Iterable[Record], console: Optional[Console] = None, *,
                 unfinished: bool = False, full: bool = False) -> None:
    """Print ``records`` as trees, each line cut at the console's width.

    Args:
        records: the wire records, of one trace or many, in any order.
        console: where to print; None: stderr, coloured only on a terminal (see
            :func:`make_console`).
        unfinished: mark each root "(unfinished trace)".
        full: print whole inputs and outputs, wrapped, instead of one-line previews.

    Raises:
        Whatever writing to the console raises (a closed stream, a broken pipe).
    """
    console = console or make_console()
    depth = max(2, min(MAX_DEPTH, (console.width - 24) // 4))  # 4 columns of guide a level
    for tree in render_traces(records, unfinished=unfinished, unicode=is_unicode(console),
                              full=full, max_depth=depth):
        console.print(tree, crop=not full, soft_wrap=False, overflow="ellipsis",
                      no_wrap=not full)


def make_console(file: Optional[TextIO] = None, width: Optional[int] = None) -> Console:
    """stderr (or ``file``), colour only on a terminal (rich honours ``NO_COLOR``),
    no markup."""
    return Console(file=file, stderr=file is None, width=width, markup=False, highlight=False,
                   emoji=False, soft_wrap=False)
