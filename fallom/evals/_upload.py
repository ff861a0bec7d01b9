"""Upload a run's results: ``POST {base_url}/api/sdk-evals``, the references' payload.

The payload is 0.2.7's key for key (the TypeScript SDK sends the same), so the
Fallom cloud and ``fallom serve`` store runs of every SDK alike. The answer's
``run_id`` gives the run's page, ``{base_url}/evals/{run_id}``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple, Union

from fallom.evals import _settings
from fallom.evals._http import RequestFailed, encode, request_json
from fallom.evals._report import say
from fallom.evals._settings import DEFAULT_JUDGE_MODEL
from fallom.evals._types import SCORE_FIELDS, EvalResult

__all__ = ["Results", "all_results", "payload", "post_run", "upload_results"]

Results = Union[List[EvalResult], Dict[str, List[EvalResult]]]
_UPLOAD_TIMEOUT_S = 60.0  # 0.2.7's


def all_results(results: Results) -> List[EvalResult]:
    """Every result, one list (``compare_models`` gives one per model)."""
    if isinstance(results, dict):
        return [result for group in results.values() for result in group]
    return list(results)


def _entry(result: EvalResult) -> Dict[str, Any]:
    entry: Dict[str, Any] = {
        "input": result.input, "system_message": result.system_message,
        "expected_output": result.expected_output, "context": result.context,
        "metadata": result.metadata, "model": result.model, "output": result.output,
        "is_production": result.is_production}
    entry.update((name, getattr(result, name)) for name in SCORE_FIELDS)
    entry.update(reasoning=result.reasoning, latency_ms=result.latency_ms,
                 tokens_in=result.tokens_in, tokens_out=result.tokens_out, cost=result.cost)
    return entry


def payload(results: Results, name: str, description: Optional[str],
            judge_model: str) -> Dict[str, Any]:
    """The upload's body; ``dataset_size`` counts distinct (input, system message) pairs."""
    flat = all_results(results)
    return {"name": name, "description": description,
            "dataset_size": len({(r.input, r.system_message or "") for r in flat}),
            "judge_model": judge_model, "results": [_entry(r) for r in flat]}


def post_run(body: Dict[str, Any]) -> Tuple[str, str]:
    """Upload one run.

    Returns:
        Its ``run_id`` and the URL of its page.

    Raises:
        RequestFailed: Fallom gave no usable answer, or one without a ``run_id``.
    """
    current = _settings.config()
    answer = request_json("POST", f"{current.base_url}/api/sdk-evals", what="Fallom",
                          headers={"Authorization": f"Bearer {current.api_key}",
                                   "Content-Type": "application/json"},
                          body=encode(body), timeout=_UPLOAD_TIMEOUT_S, own_endpoint=True)
    run_id = answer.get("run_id") if isinstance(answer, dict) else None
    if not isinstance(run_id, (str, int)) or isinstance(run_id, bool) or run_id == "":
        raise RequestFailed(f"Fallom at {current.base_url} answered without a run_id")
    return str(run_id), f"{current.base_url}/evals/{run_id}"


def send(results: Results, name: str, description: Optional[str], judge_model: str,
         verbose: bool) -> Tuple[Optional[str], str]:
    """Upload, saying how it went when ``verbose``; never raises.

    Returns:
        The run id (None on failure) and its page's URL ("" on failure), as 0.2.7
        returned the URL.
    """
    try:
        run_id, url = post_run(payload(results, name, description, judge_model))
    except (RequestFailed, ValueError, TypeError) as exc:
        if verbose:
            say(f"\n⚠️  Failed to upload results: {exc}")
        return None, ""
    if verbose:
        say(f"\n✅ Results uploaded to Fallom! View at: {url}")
    return run_id, url


def upload_results(results: Results, name: str, description: Optional[str] = None,
                   judge_model: Optional[str] = None) -> str:
    """Upload results you hold (``evaluate(..., upload=False)``'s, or edited ones).

    Args:
        results: what ``evaluate`` or ``compare_models`` returned.
        name: the run's name.
        description: the run's description; None: none.
        judge_model: the judge that scored them; None: the default judge.

    Returns:
        The URL of the run's page; "" when the upload failed (it says why).

    Raises:
        RuntimeError: ``evals.init`` was not called with a key.
    """
    if not _settings.config().initialized:
        raise RuntimeError("Fallom evals not initialized. Call evals.init() first.")
    return send(results, name, description, judge_model or DEFAULT_JUDGE_MODEL, True)[1]
