"""Wrapper overhead per non-streaming OpenAI call against a local server.

The real ``openai`` client, unwrapped and wrapped by ``session.wrap_openai``
(tracing on, an exporter attached), called alternately in the same run, each
call timed on its own; the server runs in its own process. Prints the ratio
of the median call times (target <= 1.05). Run it a few times: the figure
to report is the median of the runs.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_export import sink

import fallom

CALLS, WARM_UP = 4000, 200
MESSAGES = [{"role": "user", "content": "Say hello"}]


class NullExporter:
    def export(self, records: Any) -> bool:
        return True


def timed(client: Any) -> float:
    start = time.perf_counter_ns()
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    return (time.perf_counter_ns() - start) / 1000


def main() -> None:
    import openai

    fallom.init(exporters=[NullExporter()])
    with sink() as url:
        raw = openai.OpenAI(api_key="bench", base_url=url + "/v1", max_retries=0)
        wrapped = fallom.session(config_key="bench", session_id="s").wrap_openai(raw)
        bare: List[float] = []
        traced: List[float] = []
        for _ in range(CALLS):
            bare.append(timed(raw))
            traced.append(timed(wrapped))
    b, t = statistics.median(bare[WARM_UP:]), statistics.median(traced[WARM_UP:])
    print(f"unwrapped client   {b:8.1f} us/call")
    print(f"wrapped client     {t:8.1f} us/call   (+{t - b:.1f} us)")
    print(f"  ratio            {t / b:8.3f}   target <= 1.05 (median of {CALLS - WARM_UP} calls)")
    fallom.shutdown()


if __name__ == "__main__":
    main()
