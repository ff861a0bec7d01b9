"""Runs: calls in flight at once up to ``max_concurrency``, results in dataset order,
a progress bar on a terminal only."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import textwrap
from typing import List

import pytest

from fallom import evals

from ._judge_server import FIXTURES, JUDGE_KEY, Answer, JudgeServer, prompt_score, subprocess_env

fresh_evals, judge, api, configured = FIXTURES


def _items(count: int) -> List[evals.DatasetItem]:
    return [evals.DatasetItem(input=f"question {i}", output=f"answer {i}") for i in range(count)]


def _judged(judge: JudgeServer, item: str, metric: str) -> float:
    """The score the judge gave ``item`` for the metric whose criteria start with ``metric``."""
    (request,) = [r for r in judge.asked(f"**User Input:** {item}\\n", f"{metric} - ")
                  if "response_format" in r["json"]]
    return prompt_score(request["json"]["messages"][0]["content"])


@pytest.mark.usefixtures("configured")
def test_calls_in_flight_are_bounded_by_max_concurrency(judge: JudgeServer) -> None:
    judge.delay = 0.05
    evals.evaluate(_items(12), ["toxicity", "bias"], max_concurrency=3, verbose=False)
    assert judge.peak_in_flight == 3
    judge.peak_in_flight = 0
    evals.evaluate(_items(12), ["toxicity", "bias"], verbose=False)
    assert judge.peak_in_flight == 8  # the default


@pytest.mark.usefixtures("configured")
def test_results_are_in_dataset_order_whatever_order_answers_come_in(
        judge: JudgeServer) -> None:
    judge.script(Answer(delay=0.4), match="**User Input:** question 0\\n")
    results = evals.evaluate(_items(6), ["toxicity", "coherence"], verbose=False)
    assert [r.input for r in results] == [f"question {i}" for i in range(6)]
    for index, result in enumerate(results):
        assert result.toxicity == _judged(judge, f"question {index}", "Toxicity")
        assert result.coherence == _judged(judge, f"question {index}", "Coherence")


@pytest.mark.usefixtures("configured")
def test_compare_models_keeps_each_models_results_in_dataset_order(judge: JudgeServer) -> None:
    judge.script(Answer(delay=0.4), match=('"model": "m/slow"', "question 0"))
    results = evals.compare_models(_items(4), ["m/slow", "m/fast"], ["toxicity"],
                                   verbose=False)
    assert list(results) == ["production", "m/slow", "m/fast"]
    for name, rows in results.items():
        assert [r.input for r in rows] == [f"question {i}" for i in range(4)]
        assert all(r.model == name and r.toxicity is not None for r in rows)
    assert results["m/slow"][0].output == "m/slow says: 0 noitseuq"
    assert (results["m/slow"][0].latency_ms or 0) >= 400
    assert results["m/fast"][1].tokens_out == 7


SCRIPT = """
from fallom import evals
items = [evals.DatasetItem(input=f"question {{i}}", output=f"answer {{i}}") for i in range(6)]
evals.evaluate(items, ["toxicity"], verbose={verbose})
print("done")
"""


def _run(judge: JudgeServer, verbose: bool, terminal: bool) -> str:
    """The script's output, its stdout a terminal (a pty) or a pipe."""
    env = subprocess_env(FALLOM_JUDGE_BASE_URL=judge.base_url, FALLOM_JUDGE_API_KEY=JUDGE_KEY,
                         TERM="xterm-256color", COLUMNS="100")
    env.pop("NO_COLOR", None)
    code = textwrap.dedent(SCRIPT.format(verbose=verbose))
    if not terminal:
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=60, check=True).stdout
    leader, follower = pty.openpty()
    with subprocess.Popen([sys.executable, "-c", code], env=env, stdout=follower,
                          stderr=follower, stdin=subprocess.DEVNULL) as proc:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(60) == 0
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_a_progress_bar_on_a_terminal_only(judge: JudgeServer) -> None:
    judge.delay = 0.05
    on_terminal = _run(judge, verbose=True, terminal=True)
    assert "Evaluating" in on_terminal
    assert "6/6" in on_terminal
    assert "━" in on_terminal
    assert "EVALUATION SUMMARY" in on_terminal
    piped = _run(judge, verbose=True, terminal=False)
    assert "EVALUATION SUMMARY" in piped
    assert "Evaluating" not in piped
    assert "━" not in piped
    quiet = _run(judge, verbose=False, terminal=True)
    assert "Evaluating" not in quiet
    assert quiet.strip() == "done"
