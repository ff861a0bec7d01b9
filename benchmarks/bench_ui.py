"""Render times of ``fallom serve``'s web UI on real volumes, in headless Chromium.

Pages: a database of 100,000 spans in 10,000 traces (plus one trace of 200 spans
and one of 2,000) is written through the server's own ingest checks; then each
page is loaded afresh and timed from navigation to rendered (the page marks the
moment, ``data-ready-ms``). Million: 1,000,000 spans stored as bench_serve.py
stores them for its reads; the traces list, a full-text search (``#/traces?q=``)
and a trace page, timed the same way. Prints the median of 5 loads each, and
the page weight. Needs Debian's ``chromium`` and ``chromium-driver`` and
``selenium``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

from _util import fallom_serve

from fallom.server._ingest import prepare
from fallom.server._store import Store

TRACES, SPANS_PER_TRACE = 10_000, 10


def record(trace: int, span: int, parent: int | None, second: int) -> Dict[str, Any]:
    out: Dict[str, Any] = {
        "trace_id": f"{trace:032x}", "span_id": f"{trace * 10_000 + span + 1:016x}",
        "name": "agent" if parent is None else f"step-{span}", "kind": "llm" if span % 3 else "span",
        "model": "gpt-4o-mini" if span % 3 else None, "session_id": f"s-{trace % 2_000}",
        "customer_id": f"c-{trace % 97}", "config_key": "agent", "status": "OK",
        "start_time": f"2026-11-{1 + second // 86_400 % 28:02d}T{second // 3600 % 24:02d}:"
                      f"{second // 60 % 60:02d}:{second % 60:02d}.{span * 1000:06d}Z",
        "duration_ms": 900 if parent is None else 50 + span, "total_tokens": 120,
        "attributes": {"fallom.raw.request": '{"input": "What is in the documents?"}'}}
    if parent is not None:
        out["parent_span_id"] = f"{trace * 10_000 + parent + 1:016x}"
    return {k: v for k, v in out.items() if v is not None}


def spans() -> Iterator[Dict[str, Any]]:
    for trace in range(1, TRACES + 1):
        for span in range(SPANS_PER_TRACE):
            yield record(trace, span, None if span == 0 else 0, trace * 7)
    for trace, size in ((TRACES + 1, 200), (TRACES + 2, 2_000)):
        for span in range(size):
            yield record(trace, span, None if span == 0 else max(0, (span - 1) // 10), 0)


def seed(db: str) -> None:
    store = Store(db)
    batch: List[Any] = []
    for span in spans():
        row, reason = prepare(span)
        assert row is not None, reason
        batch.append(row)
        if len(batch) == 5_000:
            store.add_rows(batch)
            batch = []
    store.add_rows(batch)


Route = Tuple[str, str]


def browser_at(size: str = "1400,900") -> Any:
    """Headless Chromium, as the UI tests drive it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_path:
        sys.exit("needs Debian's chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={size}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=options)


def load_ms(browser: Any, url: str, route: str) -> float:
    """One fresh load of ``route``: navigation to rendered, as the page measures it
    (``data-ready-ms``, set once the page's data is drawn)."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{url}/?load={uuid.uuid4().hex}{route}")
    return float(WebDriverWait(browser, 60, poll_frequency=0.01).until(
        lambda driver: driver.execute_script("return document.body.dataset.readyMs")))


def report_loads(url: str, routes: List[Route], repeat: int) -> None:
    """The median of ``repeat`` fresh loads of each route, printed."""
    browser = browser_at()
    try:
        for title, route in routes:
            times = [load_ms(browser, url, route) for _ in range(repeat)]
            rows = browser.execute_script("return document.querySelectorAll('tbody tr').length")
            print(f"  {title:34} {statistics.median(times):>7.0f} ms   target < 1,000 ms"
                  f"   ({rows} rows shown)", flush=True)
    finally:
        browser.quit()


def pages_part(repeat: int) -> None:
    """100,000 spans in 10,002 traces: every page, and traces of 200 and 2,000 spans."""
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "ui.db")
        seed(db)
        with fallom_serve(db) as url:
            print(f"{TRACES * SPANS_PER_TRACE + 2_200:,} spans in {TRACES + 2:,} traces; "
                  f"median of {repeat} fresh loads, navigation to rendered:", flush=True)
            report_loads(url, [("trace list (50 of 10,002)", "#/traces"),
                               ("trace of 200 spans", f"#/trace/{TRACES + 1:032x}"),
                               ("trace of 2,000 spans", f"#/trace/{TRACES + 2:032x}"),
                               ("sessions", "#/sessions"), ("session", "#/session/s-7"),
                               ("experiments", "#/experiments")], repeat)


def million_part(spans: int, repeat: int) -> None:
    """The list, a full-text search and a trace with ``spans`` stored, the database filled
    as bench_serve.py fills it for its reads (its records, through the store)."""
    import bench_serve

    traces = spans // bench_serve.SPANS_PER_TRACE
    middle = traces // 2
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "million.db")
        print(f"filling {spans:,} spans ({traces:,} traces) as bench_serve.py does...",
              flush=True)
        print(f"  filled in {bench_serve.fill(db, spans):.0f} s", flush=True)
        with fallom_serve(db) as url:
            print(f"{spans:,} spans in {traces:,} traces; median of {repeat} fresh loads, "
                  "navigation to rendered:", flush=True)
            report_loads(url, [("trace list (50 newest)", "#/traces"),
                               (f"search q=question {middle}",
                                f"#/traces?q=question%20{middle}"),
                               ("search q=answer (most traces)", "#/traces?q=answer"),
                               ("trace of 10 spans", f"#/trace/{middle:032x}"),
                               ("sessions", "#/sessions")], repeat)


def weight() -> None:
    ui = Path(__file__).resolve().parent.parent / "fallom" / "server" / "ui"
    sizes = {path.name: path.stat().st_size for path in sorted(ui.iterdir())}
    print("page weight: " + ", ".join(f"{name} {size:,} B" for name, size in sizes.items())
          + f"; total {sum(sizes.values()):,} B (uncompressed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("all", "pages", "million"), default="all")
    parser.add_argument("--spans", type=int, default=1_000_000, help="stored for 'million'")
    parser.add_argument("--repeat", type=int, default=5, help="fresh loads per page")
    args = parser.parse_args()
    if args.part in ("all", "pages"):
        pages_part(args.repeat)
    if args.part in ("all", "million"):
        million_part(args.spans, args.repeat)
    weight()


if __name__ == "__main__":
    os.environ.setdefault("NO_COLOR", "1")
    main()
