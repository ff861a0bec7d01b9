"""The judge: one G-Eval request per item and metric, traced as an ``eval`` span.

The request is 0.2.7's byte for byte (its prompt, ``response_format:
json_object``, temperature 0, the same headers). The answer must be a JSON
object with a numeric ``score``; the score is clamped to [0, 1] as the
TypeScript SDK does. An answer that is not that is asked for once more, then
the metric fails with the reason. With ``capture_content`` off the span holds
no prompt, reply or reasoning: only the metric, the model, tokens and score.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from typing import Any, Dict, NamedTuple, Optional, Union

from fallom.evals._chat import message_content, usage_of
from fallom.evals._http import encode, request_json
from fallom.evals._metrics import Metric
from fallom.evals._prompts import build_g_eval_prompt
from fallom.evals._settings import Judge
from fallom.tracing._api import span
from fallom.tracing._span import NoOpSpan, Span

__all__ = ["JudgeCall", "Verdict", "VerdictError", "judge_body", "read_verdict"]

_ASKS = 2  # an answer that is not the expected JSON is asked for once more


class Verdict(NamedTuple):
    """The judge's score (0 to 1) and its overall reasoning."""

    score: float
    reasoning: str


class VerdictError(Exception):
    """The judge answered, but not with ``{"score": number, ...}``."""


def judge_body(model: str, prompt: str) -> Dict[str, Any]:
    """0.2.7's judge request, key for key and in its order."""
    return {"model": model, "messages": [{"role": "user", "content": prompt}],
            "response_format": {"type": "json_object"}, "temperature": 0}


@dataclass(frozen=True)
class JudgeCall:
    """What every judge call of one run shares: endpoint, judge model, context."""

    endpoint: Judge
    model: str
    context: Optional[str]
    cancel: threading.Event

    def score(self, metric: Metric, input_text: str, output_text: str,
              system_message: Optional[str]) -> Verdict:
        """Ask the judge about one item and one metric, inside an ``eval`` span.

        Raises:
            RequestFailed: the judge gave no usable answer (timeout, error status).
            VerdictError: it answered twice, neither time with the expected JSON.
        """
        prompt = build_g_eval_prompt(metric.criteria, metric.steps, system_message,
                                     input_text, output_text, self.context)
        payload = judge_body(self.model, prompt)
        with span(f"geval.{metric.name}", kind="eval",
                  attributes={"eval.metric": metric.name}) as current:
            current.set_model(self.model)
            current.set_input(payload["messages"])
            verdict = self._ask(encode(payload), current)
            current.set_attribute("eval.score", verdict.score)
            return verdict

    def _ask(self, body: bytes, current: Union[Span, NoOpSpan]) -> Verdict:
        problem = ""
        for _ in range(_ASKS):
            data = request_json("POST", self.endpoint.chat_url, what="the judge",
                                headers=self.endpoint.headers(), body=body,
                                timeout=self.endpoint.timeout, cancel=self.cancel)
            tokens = usage_of(data)
            current.record_usage(tokens.tokens_in, tokens.tokens_out)
            if isinstance(data, dict) and isinstance(data.get("model"), str):
                current.set_model(data["model"])
            try:
                content = message_content(data)
                current.set_output(content)
                return read_verdict(content)
            except (ValueError, VerdictError) as exc:
                problem = str(exc)
        raise VerdictError(f"the judge's reply is not the expected JSON (asked {_ASKS} times): "
                         f"{problem}")


def read_verdict(content: str) -> Verdict:
    """The score (clamped to [0, 1]) and ``overall_reasoning`` of the judge's reply.

    Raises:
        VerdictError: not a JSON object, or no finite numeric ``score`` in it.
    """
    try:
        answer = json.loads(content)
    except ValueError:
        raise VerdictError("it is not JSON") from None
    if not isinstance(answer, dict):
        raise VerdictError(f"it is a JSON {type(answer).__name__}, not an object")
    score = _number(answer.get("score"))
    if score is None:
        raise VerdictError("it has no numeric \"score\"")
    reasoning = answer.get("overall_reasoning")
    text = reasoning if isinstance(reasoning, str) else "" if reasoning is None \
        else json.dumps(reasoning)
    return Verdict(min(1.0, max(0.0, score)), text)


def _number(value: Any) -> Optional[float]:
    """A finite number, also written as a string (``"0.8"``); None for anything else."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value) if isinstance(value, (int, float, str)) else math.nan
    except ValueError:
        return None
    return number if math.isfinite(number) else None
