"""An evaluation of 200 items x 3 metrics against a local judge answering after 50 ms:
fallom 0.2.7 (every judge call one after another) and this SDK (8 at a time), in one run.

Both SDKs run in a process of their own (0.2.7 in the reference interpreter,
``.venv-ref027``) against the same local OpenAI-compatible judge, which runs in
this process; each times its own ``evaluate`` call. Nothing leaves the machine.
Target: this SDK's wall time at most 1/6 of 0.2.7's. Prints each run and the
median of ``--repeat`` runs (default 3).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests._judge_server import JUDGE_KEY, JudgeServer, run_reference, subprocess_env  # noqa: E402
from tests.reference.make_fixtures import reference_python  # noqa: E402

TARGET = 1 / 6
METRICS = ["answer_relevancy", "toxicity", "completeness"]

OURS = r"""
import json, sys, time
from fallom import evals

job = json.load(open(sys.argv[1]))
items = [evals.DatasetItem(**item) for item in job["items"]]
start = time.perf_counter()
evals.evaluate(items, job["metrics"], verbose=False, upload=False)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def _job(items: int, metrics: int) -> Dict[str, Any]:
    return {"kind": "evaluate", "metrics": METRICS[:metrics],
            "items": [{"input": f"Question {i}: what does plan {i} include?",
                       "output": f"Plan {i} includes support and {i} seats."}
                      for i in range(items)]}


def ours(judge: JudgeServer, job: Dict[str, Any], folder: Path) -> float:
    """This SDK's wall time for the job, in its own process."""
    path = folder / "ours.json"
    path.write_text(json.dumps(job))
    env = subprocess_env(FALLOM_JUDGE_BASE_URL=judge.base_url, FALLOM_JUDGE_API_KEY=JUDGE_KEY)
    done = subprocess.run([sys.executable, "-c", OURS, str(path)], env=env, check=True,
                          capture_output=True, text=True, timeout=600)
    return float(json.loads(done.stdout)["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--metrics", type=int, default=3, choices=range(1, 4))
    parser.add_argument("--delay", type=float, default=0.05, help="the judge's latency (s)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    python = reference_python()
    job = _job(args.items, args.metrics)
    judge = JudgeServer(delay=args.delay)
    theirs_s: List[float] = []
    ours_s: List[float] = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            for run in range(1, args.repeat + 1):
                theirs_s.append(float(run_reference(python, judge, job, Path(folder))["seconds"]))
                ours_s.append(ours(judge, job, Path(folder)))
                print(f"run {run}: 0.2.7 {theirs_s[-1]:.2f} s, this SDK {ours_s[-1]:.2f} s, "
                      f"ratio {ours_s[-1] / theirs_s[-1]:.3f}", flush=True)
    finally:
        judge.close()
    theirs_m, ours_m = statistics.median(theirs_s), statistics.median(ours_s)
    calls = args.items * args.metrics
    print(f"\n{args.items} items x {args.metrics} metrics = {calls} judge calls at "
          f"{args.delay * 1000:g} ms, median of {args.repeat} runs:")
    print(f"  fallom 0.2.7 (one call at a time)  {theirs_m:8.2f} s")
    print(f"  this SDK (8 calls at a time)       {ours_m:8.2f} s")
    ratio = ours_m / theirs_m
    print(f"  ratio {ratio:.3f} (target ≤ {TARGET:.3f}): {'met' if ratio <= TARGET else 'MISSED'}")


if __name__ == "__main__":
    main()
