"""The README's offline evals example: fallom serve, the judge stand-in, the example script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests

from ._serve_process import launch, stop

ROOT = Path(__file__).resolve().parent.parent
KEY = "example-key"


def test_the_offline_evals_example_stores_its_run_in_fallom_serve(tmp_path: Path) -> None:
    serve, url = launch("--db", str(tmp_path / "t.db"), "--api-key", KEY)
    judge = subprocess.Popen([sys.executable, str(ROOT / "examples" / "judge_standin.py")],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert judge.stdout is not None
        judge_url = judge.stdout.readline().strip().split("=", 1)[1]
        env = {**os.environ, "FALLOM_API_KEY": KEY, "FALLOM_BASE_URL": url,
               "FALLOM_TRACES_URL": url, "FALLOM_JUDGE_BASE_URL": judge_url}
        done = subprocess.run([sys.executable, str(ROOT / "examples" / "evals_quickstart.py")],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        scores = [float(line.split()[0]) for line in done.stdout.splitlines()
                  if line[:1].isdigit()]
        assert len(scores) == 3
        assert scores[0] > scores[2]  # the relevant answer beats the evasive one
        assert f"{url}/evals/" in done.stdout + done.stderr  # where to look, as 0.2.7 says
        runs = requests.get(f"{url}/api/evals", headers={"Authorization": f"Bearer {KEY}"},
                            timeout=10).json()
        listed = runs.get("runs", runs) if isinstance(runs, dict) else runs
        assert any(run.get("name") == "quickstart answers" for run in listed)
    finally:
        judge.terminate()
        judge.wait(10)
        stop(serve)
