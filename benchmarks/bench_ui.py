"""Render times of ``fallom serve``'s web UI on real volumes, in headless Chromium.

A database of 100,000 spans in 10,000 traces (plus one trace of 200 spans and
one of 2,000) is written through the server's own ingest checks; then each
page is loaded afresh and timed from navigation to rendered (the page marks
the moment). Prints the median of 5 loads each, and the page weight.
Needs Debian's ``chromium`` and ``chromium-driver`` and ``selenium``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List

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


def main() -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_path:
        sys.exit("needs Debian's chromium and chromium-driver")
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "ui.db")
        seed(db)
        with fallom_serve(db) as url:
            options = webdriver.ChromeOptions()
            options.binary_location = chromium
            for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,900"):
                options.add_argument(flag)
            browser = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
            try:
                print(f"{TRACES * SPANS_PER_TRACE + 2_200:,} spans in {TRACES + 2:,} traces; "
                      "median of 5 fresh loads, navigation to rendered:")
                for title, route in (("trace list (50 of 10,002)", "#/traces"),
                                     ("trace of 200 spans", f"#/trace/{TRACES + 1:032x}"),
                                     ("trace of 2,000 spans", f"#/trace/{TRACES + 2:032x}"),
                                     ("sessions", "#/sessions"), ("experiments", "#/experiments")):
                    times = []
                    for _ in range(5):
                        browser.get(f"{url}/?load={uuid.uuid4().hex}{route}")
                        for _ in range(600):
                            ready = browser.execute_script("return document.body.dataset.readyMs")
                            if ready:
                                break
                            time.sleep(0.01)  # the page measures itself; this only polls
                        times.append(float(ready))
                    print(f"  {title:28} {statistics.median(times):>7.0f} ms   target < 1,000 ms")
            finally:
                browser.quit()
    ui = Path(__file__).resolve().parent.parent / "fallom" / "server" / "ui"
    weight = {path.name: path.stat().st_size for path in sorted(ui.iterdir())}
    print("page weight: " + ", ".join(f"{name} {size:,} B" for name, size in weight.items())
          + f"; total {sum(weight.values()):,} B (uncompressed)")


if __name__ == "__main__":
    os.environ.setdefault("NO_COLOR", "1")
    main()
