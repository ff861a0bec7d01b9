"""The debug console: exact trees, no interleaving, markup safety, privacy."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from typing import Iterator

import pytest
from rich.console import Console

import fallom
from fallom.console import print_traces
from fallom.exporters._console import ConsoleProcessor
from fallom.testing import capture_spans, deterministic
from fallom.tracing import _runtime


def make_console(width: int = 80, encoding: str = "utf-8") -> Console:
    stream = io.TextIOWrapper(io.BytesIO(), encoding=encoding, write_through=True)
    return Console(file=stream, width=width, color_system=None, markup=False,
                   highlight=False, emoji=False)


def output(console: Console) -> str:
    stream = console.file
    stream.flush()
    return stream.buffer.getvalue().decode(stream.encoding)  # type: ignore[attr-defined]


def attach(width: int = 80, encoding: str = "utf-8", **init: object) -> Console:
    """init(), then print every finished trace to a fresh in-memory console."""
    fallom.init(**init)  # type: ignore[arg-type]
    console = make_console(width, encoding)
    _runtime.swap(lambda rt: rt.replace(test_processors=(ConsoleProcessor(console),)))
    return console


@pytest.fixture
def console() -> Console:
    return attach()


@fallom.trace_llm(model="gpt-4o-mini")
def ask(question: str) -> str:
    fallom.current_span().record_usage(prompt_tokens=12, completion_tokens=30)
    return "Paris"


@fallom.trace_llm
def stream(question: str) -> Iterator[str]:
    yield "Hel"
    yield "lo"


def agent() -> None:
    with fallom.session(config_key="agent", session_id="s-1", customer_id="u-1"):
        with fallom.span("plan", kind="agent"):
            with fallom.span("retrieve", kind="retrieval"):
                pass
            ask("capital of France?")
            list(stream("greet"))
            try:
                with fallom.span("tool", kind="tool"):
                    raise ValueError("no such city")
            except ValueError:
                pass


EXPECTED = """\
plan (agent) 10.0 ms OK · session s-1 · customer u-1 · config agent
├── retrieve (retrieval) 1.0 ms OK
├── ask (llm) 1.0 ms OK · gpt-4o-mini · tokens 12/30/42
│     in {"question":"capital of France?"} → out Paris
├── stream (llm) 2.0 ms OK · ttft 1.0 ms
│     in {"question":"greet"} → out Hello
└── tool (tool) 1.0 ms ERROR · ValueError: no such city
"""


def test_exact_tree_for_a_fixed_trace(console: Console) -> None:
    with deterministic():
        agent()
    assert output(console) == EXPECTED


def test_ascii_guides_when_the_encoding_cannot_draw_boxes() -> None:
    ascii_console = attach(encoding="ascii")
    with deterministic():
        agent()
    text = output(ascii_console)
    assert text.splitlines()[1] == "+-- retrieve (retrieval) 1.0 ms OK"
    assert text.isascii()


def test_markup_in_user_text_prints_literally() -> None:
    console = attach(width=200)

    @fallom.trace_llm(name="[bold]name[/bold]")
    def tricky(prompt: str) -> str:
        return "[link=https://evil.example]click[/link] [/]"

    tricky("[/bold] close what was never opened [red]")
    text = output(console)
    assert "[bold]name[/bold] (llm)" in text
    assert '[/bold] close what was never opened [red]' in text
    assert "[link=https://evil.example]click[/link] [/]" in text


@pytest.mark.parametrize("full", [False, True])
def test_control_characters_in_user_text_are_shown_not_obeyed(full: bool) -> None:
    # a stored name, model output or error must not retitle, clear or rewrite the terminal
    record = {"trace_id": "a" * 32, "span_id": "b" * 16, "name": "t\x1b]0;owned\x07x",
              "kind": "llm", "status": "ERROR", "error_message": "ok\rfake line",
              "model": "m\x1b[2J", "duration_ms": 1.0, "start_time": "2026-01-01T00:00:00Z",
              "attributes": {"fallom.raw.request": '{"input":"a\\u202eb\\u009bc\\nd"}'}}
    out = io.StringIO()
    print_traces([record], Console(file=out, width=300, force_terminal=False), full=full)
    text = out.getvalue()
    assert not any(c in text for c in "\x1b\x07\r\u202e\x9b")
    assert "t\\x1b]0;owned\\x07x (llm)" in text
    assert "m\\x1b[2J" in text
    assert "ok\\x0dfake line" in text
    assert ("a\\u202eb\\x9bc\nd" if full else "a\\u202eb\\x9bc d") in text


def test_long_lines_are_cut_not_wrapped() -> None:
    narrow = attach(width=40)
    with fallom.span("a-very-long-span-name-" * 5):
        pass
    lines = output(narrow).splitlines()
    assert len(lines) == 1
    assert len(lines[0]) <= 40
    assert lines[0].endswith("…")


def test_no_preview_and_no_error_text_with_capture_off() -> None:
    quiet = attach(capture_content=False)

    def failing() -> None:
        with fallom.span("root"):
            ask("secret question")
            raise ValueError("secret error")

    with pytest.raises(ValueError):
        failing()
    text = output(quiet)
    assert "secret" not in text
    assert "ValueError" in text
    assert " in " not in text


def test_two_threads_never_interleave(console: Console) -> None:
    barrier = threading.Barrier(2)

    def trace(name: str) -> None:
        with fallom.span(name):
            for i in range(50):
                with fallom.span(f"{name}-{i}"):
                    if i == 0:
                        barrier.wait()

    threads = [threading.Thread(target=trace, args=(n,)) for n in ("alpha", "beta")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = output(console).splitlines()
    assert len(lines) == 102
    owners = [("alpha" if "alpha" in line else "beta") for line in lines]
    assert owners in (["alpha"] * 51 + ["beta"] * 51, ["beta"] * 51 + ["alpha"] * 51)


def test_unfinished_traces_are_printed_at_shutdown(console: Console) -> None:
    root = fallom.span("never-ends")
    root.__enter__()
    with fallom.span("child"):
        pass
    assert output(console) == ""
    _runtime.STATE.test_processors[0].shutdown(1.0)
    assert "child (span)" in output(console)
    assert "(unfinished trace)" in output(console)
    root.__exit__(None, None, None)


def test_render_any_records() -> None:
    with deterministic(), capture_spans() as spans:
        agent()
    plain = make_console()
    print_traces(list(reversed(spans)), plain)
    assert output(plain) == EXPECTED


def test_fallom_debug_prints_to_stderr_without_escape_codes() -> None:
    code = (
        "import fallom\n"
        "fallom.init()\n"
        "with fallom.span('hello-debug'):\n"
        "    pass\n"
    )
    env = {**os.environ, "FALLOM_DEBUG": "true"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=60, check=True)
    assert result.stdout == ""
    assert "hello-debug (span)" in result.stderr
    assert "\x1b[" not in result.stderr


def test_diagnostics_go_through_logging_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    from ._traces_server import TracesServer

    server = TracesServer()
    try:
        fallom.init(api_key="k", traces_url=server.url, debug=True)
        with fallom.span("x"):
            pass
        assert fallom.flush(5.0)
    finally:
        server.close()
    assert any(r.levelname == "DEBUG" and "delivered 1 spans" in r.getMessage()
               for r in caplog.records if r.name == "fallom")


def test_the_package_never_calls_print() -> None:
    import ast
    import pathlib

    root = pathlib.Path(fallom.__file__).parent
    for path in root.rglob("*.py"):
        if path.parent.name == "cli":  # the `fallom` command's own output, not diagnostics
            continue
        tree = ast.parse(path.read_text())
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Name) and n.func.id == "print"]
        assert calls == [], path
