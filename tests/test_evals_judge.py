"""Any judge, and a judge that misbehaves: scores clamped, replies retried, runs finished.

A real local OpenAI-compatible server plays the judge, told request by request
to answer 429, 5xx, malformed JSON or out-of-range scores.
"""

from __future__ import annotations

from typing import List

import pytest

from fallom import evals

from ._judge_server import FIXTURES, Answer, JudgeServer, prompt_score

fresh_evals, judge, api, configured = FIXTURES


def _items(count: int) -> List[evals.DatasetItem]:
    return [evals.DatasetItem(input=f"question {i}", output=f"answer {i}") for i in range(count)]


def test_init_points_the_judge_at_any_openai_compatible_server(judge: JudgeServer) -> None:
    evals.init(judge_base_url=judge.base_url, judge_api_key="sk-local")
    results = evals.evaluate(_items(2), ["toxicity"], judge_model="llama3", verbose=False)
    assert all(r.toxicity is not None for r in results)
    assert {r["headers"]["Authorization"] for r in judge.requests} == {"Bearer sk-local"}
    assert {r["json"]["model"] for r in judge.requests} == {"llama3"}


def test_the_environment_points_the_judge(judge: JudgeServer,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FALLOM_JUDGE_BASE_URL", judge.base_url)
    monkeypatch.setenv("FALLOM_JUDGE_API_KEY", "env-key")
    results = evals.evaluate(_items(1), ["bias"], verbose=False)  # no init at all
    assert results[0].bias is not None
    assert judge.requests[0]["headers"]["Authorization"] == "Bearer env-key"
    assert judge.requests[0]["json"]["model"] == evals.DEFAULT_JUDGE_MODEL


def test_an_openrouter_key_is_never_sent_to_another_judge(
        judge: JudgeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "openrouter-secret")
    evals.init(judge_base_url=judge.base_url)  # a local judge without a key
    evals.evaluate(_items(1), ["toxicity"], verbose=False)
    assert "Authorization" not in judge.requests[0]["headers"]


@pytest.mark.usefixtures("fresh_evals")
def test_the_default_judge_needs_its_key_and_says_so_before_any_call(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    with pytest.raises(ValueError, match=r"OPENROUTER_API_KEY.*FALLOM_JUDGE_BASE_URL"):
        evals.evaluate(_items(1), ["toxicity"], verbose=False)


@pytest.mark.usefixtures("configured")
def test_scores_outside_0_to_1_are_clamped(judge: JudgeServer) -> None:
    judge.script(Answer(score=1.7), match="question 0")
    judge.script(Answer(score=-0.3), match="question 1")
    results = evals.evaluate(_items(2), ["toxicity"], verbose=False)
    assert [r.toxicity for r in results] == [1.0, 0.0]


@pytest.mark.usefixtures("configured")
def test_a_reply_that_is_not_json_is_asked_for_again(judge: JudgeServer) -> None:
    judge.script(Answer(content="Sure! I'd say 0.9."), match="question 0")
    result = evals.evaluate(_items(1), ["toxicity"], verbose=False)[0]
    asked = judge.asked("question 0")
    assert len(asked) == 2
    assert asked[0]["body"] == asked[1]["body"]
    assert result.toxicity == prompt_score(asked[0]["json"]["messages"][0]["content"])


@pytest.mark.usefixtures("configured")
def test_a_reply_twice_not_the_expected_json_fails_that_metric_only(judge: JudgeServer) -> None:
    judge.script(Answer(content="not json"), Answer(content='{"overall_reasoning": "no score"}'),
                 match=("question 0", "Toxicity - "))
    first, second = evals.evaluate(_items(2), ["toxicity", "bias"], verbose=False)
    assert first.toxicity is None
    assert first.reasoning["toxicity"] == ("Error: the judge's reply is not the expected JSON "
                                           "(asked 2 times): it has no numeric \"score\"")
    assert first.bias is not None
    assert second.toxicity is not None
    assert second.bias is not None
    assert list(first.reasoning) == ["toxicity", "bias"]  # the metrics' order, as 0.2.7


@pytest.mark.usefixtures("configured")
def test_429_waits_as_long_as_retry_after_says(judge: JudgeServer) -> None:
    judge.script(Answer(status=429, headers={"Retry-After": "1"}), match="question 0")
    result = evals.evaluate(_items(1), ["toxicity"], verbose=False)[0]
    first, second = judge.asked("question 0")
    assert result.toxicity is not None
    assert second["at"] - first["at"] >= 0.95  # the backoff alone would be at most 0.75 s


@pytest.mark.usefixtures("configured")
def test_5xx_is_retried_with_backoff(judge: JudgeServer) -> None:
    judge.script(Answer(status=503), Answer(status=502), match="question 0")
    result = evals.evaluate(_items(1), ["toxicity"], verbose=False)[0]
    assert result.toxicity is not None
    assert len(judge.asked("question 0")) == 3


@pytest.mark.usefixtures("configured")
def test_an_error_no_retry_can_fix_fails_its_metric_at_once_and_the_run_goes_on(
        judge: JudgeServer) -> None:
    judge.script(Answer(status=401), match="question 1")
    results = evals.evaluate(_items(3), ["toxicity"], verbose=False)
    assert len(judge.asked("question 1")) == 1
    assert results[1].toxicity is None
    assert results[1].reasoning["toxicity"] == (
        f"Error: the judge at {judge.base_url}/chat/completions answered 401: status 401")
    assert results[0].toxicity is not None
    assert results[2].toxicity is not None


@pytest.mark.usefixtures("configured")
def test_a_failed_metric_is_said_in_the_summary(judge: JudgeServer,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    judge.script(Answer(status=400), match="question 0")
    evals.evaluate(_items(2), ["toxicity"], name="run")
    out = capsys.readouterr().out
    assert "1 of 2 calls failed" in out
    assert "toxicity (production): the judge at" in out
    assert "answered 400" in out
