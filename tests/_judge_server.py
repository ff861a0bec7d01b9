"""Local stand-ins for the evals: an OpenAI-compatible judge/model server, a Fallom API.

``JudgeServer`` answers ``POST .../chat/completions``. A judge request (one with
``response_format``) gets ``{"score", "overall_reasoning"}`` as its content, the
score read from the prompt (the same prompt always gets the same score, so two
SDKs asked the same thing get the same answers); a model request gets a short
answer naming the model. It can be told, request by request, to answer late,
hang, answer 429 with ``Retry-After`` or 5xx, reply with malformed JSON or with
a score outside [0, 1]: ``server.script(Answer(...), ..., match="Toxicity")``.

``FallomApiServer`` serves ``GET /api/datasets/{key}`` and ``POST /api/sdk-evals``
in the references' shapes. ``REFERENCE_DRIVER`` runs the published fallom 0.2.7's
evals (in its own interpreter) against these servers: its judge URL is
OpenRouter's, fixed in its code, so the driver redirects that one URL here.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Deque, Dict, Iterator, List, Optional, Tuple, Union
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from fallom import evals
from fallom.evals import _settings

from ._http import LoopbackServer, send_bytes, send_json

JUDGE_KEY = "judge-key"
FALLOM_KEY = "evals-key"


@dataclass
class Answer:
    """How to answer one request; the defaults answer normally."""

    status: int = 200
    headers: Dict[str, str] = field(default_factory=dict)  # e.g. {"Retry-After": "1"}
    content: Optional[str] = None  # the message content instead of the usual JSON
    score: Optional[float] = None  # the judge's score instead of the usual one
    delay: float = 0.0  # answer this late (seconds)
    hang: bool = False  # never answer (until the server closes)


def prompt_score(prompt: str) -> float:
    """The usual score of a prompt: fixed by its text, 0.00 to 1.00."""
    return (zlib.crc32(prompt.encode()) % 101) / 100


def metric_of(prompt: str) -> str:
    """The criteria's first word ("Toxicity", "Answer", ...) of a judge prompt."""
    return prompt.split("## Evaluation Criteria\n", 1)[-1].split(" ", 1)[0]


class JudgeServer(LoopbackServer):
    """An OpenAI-compatible chat-completions server playing the judge and the models."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay  # every answer's latency, as a real judge has one
        self.requests: List[Dict[str, Any]] = []
        self.scripts: List[Tuple[Tuple[str, ...], Deque[Answer]]] = []
        self.cond = threading.Condition()
        self.released = threading.Event()
        self.in_flight = 0
        self.peak_in_flight = 0
        super().__init__()

    @property
    def base_url(self) -> str:
        """The base URL to configure (the path OpenRouter's API has)."""
        return f"{self.url}/api/v1"

    def script(self, *answers: Answer, match: Union[str, Tuple[str, ...]] = ()) -> JudgeServer:
        """Answer the next requests whose body holds ``match`` (each of several texts) so."""
        with self.cond:
            texts = (match,) if isinstance(match, str) else match
            self.scripts.append((texts, collections.deque(answers)))
        return self

    def asked(self, *texts: str) -> List[Dict[str, Any]]:
        """The requests whose body holds each of ``texts``."""
        return [r for r in self.requests if all(t in r["text"] for t in texts)]

    def close(self) -> None:
        self.released.set()
        super().close()

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.requests) >= count, timeout)

    def judge_requests(self) -> List[Dict[str, Any]]:
        return [r for r in self.requests if "response_format" in r["json"]]

    def on_post(self, handler: BaseHTTPRequestHandler) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        body = json.loads(raw)
        with self.cond:
            self.requests.append({"path": handler.path, "headers": dict(handler.headers),
                                  "body": raw, "json": body, "text": raw.decode(),
                                  "at": time.monotonic()})
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            answer = self._scripted(raw.decode())
            self.cond.notify_all()
        try:
            self._answer(handler, body, answer)
        finally:
            with self.cond:
                self.in_flight -= 1

    def _scripted(self, text: str) -> Answer:
        for texts, answers in self.scripts:
            if answers and all(t in text for t in texts):
                return answers.popleft()
        return Answer()

    def _answer(self, handler: BaseHTTPRequestHandler, body: Dict[str, Any],
                answer: Answer) -> None:
        if answer.hang:
            self.released.wait(60)
            handler.close_connection = True
            return
        time.sleep(self.delay + answer.delay)  # the simulated latency, not synchronisation
        if not handler.path.endswith("/chat/completions"):
            send_json(handler, 404, {"error": {"message": f"no route {handler.path}"}})
        elif answer.status != 200:
            send_json(handler, answer.status, {"error": {"message": f"status {answer.status}"}},
                      answer.headers)
        else:
            send_json(handler, 200, completion(body, answer))


def completion(body: Dict[str, Any], answer: Answer) -> Dict[str, Any]:
    """A chat completion: the judge's verdict, or a model's answer."""
    prompt = body["messages"][-1]["content"]
    if answer.content is not None:
        content = answer.content
    elif "response_format" in body:
        score = prompt_score(prompt) if answer.score is None else answer.score
        content = json.dumps({"step_evaluations": [{"step": 1, "reasoning": "looked"}],
                              "overall_reasoning": f"judged {metric_of(prompt)} {score}",
                              "score": score})
    else:
        content = f"{body['model']} says: {prompt[::-1]}"
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": 7,
                      "total_tokens": len(prompt) // 4 + 7, "total_cost": 0.0001}}


class FallomApiServer(LoopbackServer):
    """``GET /api/datasets/{key}`` and ``POST /api/sdk-evals``, as the references expect."""

    def __init__(self, datasets: Optional[Dict[str, List[Dict[str, Any]]]] = None) -> None:
        self.datasets = datasets or {}  # key -> entries ({"input", "output", "systemMessage"})
        self.uploads: List[Dict[str, Any]] = []
        self.gets: List[Dict[str, Any]] = []
        self.cond = threading.Condition()
        super().__init__()

    def _authorized(self, handler: BaseHTTPRequestHandler) -> bool:
        if handler.headers.get("Authorization") == f"Bearer {FALLOM_KEY}":
            return True
        send_json(handler, 401, {"error": "invalid API key"})
        return False

    def on_get(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        with self.cond:
            self.gets.append({"path": parts.path, "query": parse_qs(parts.query)})
        if not self._authorized(handler):
            return
        key = unquote(parts.path.rsplit("/", 1)[-1])
        if not parts.path.startswith("/api/datasets/") or key not in self.datasets:
            send_json(handler, 404, {"error": "Dataset not found"})
            return
        version = parse_qs(parts.query).get("version", ["3"])[0]
        send_json(handler, 200, {"dataset": {"key": key, "name": f"The {key}"},
                                 "version": {"version": int(version)},
                                 "entries": self.datasets[key]})

    def on_post(self, handler: BaseHTTPRequestHandler) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        if not self._authorized(handler):
            return
        if handler.path != "/api/sdk-evals":
            send_json(handler, 404, {"error": "no route"})
            return
        with self.cond:
            self.uploads.append(json.loads(raw))
            run_id = f"run-{len(self.uploads)}"
            self.cond.notify_all()
        send_bytes(handler, 200, json.dumps({"run_id": run_id}).encode())


# -- fixtures: a test module takes them with `fresh_evals, judge, api, configured = FIXTURES`
@pytest.fixture
def fresh_evals() -> Iterator[None]:
    """The test starts with ``evals.init`` not called, and ends so."""
    _settings.reset()
    yield
    _settings.reset()


@pytest.fixture
def judge(fresh_evals: None) -> Iterator[JudgeServer]:
    server = JudgeServer()
    yield server
    server.close()


@pytest.fixture
def api() -> Iterator[FallomApiServer]:
    server = FallomApiServer()
    yield server
    server.close()


@pytest.fixture
def configured(judge: JudgeServer, api: FallomApiServer) -> None:
    """``evals.init`` with the local Fallom API and the local judge."""
    evals.init(api_key=FALLOM_KEY, base_url=api.url, judge_base_url=judge.base_url,
               judge_api_key=JUDGE_KEY)


FIXTURES = (fresh_evals, judge, api, configured)


# -- the published 0.2.7, driven in its own interpreter -----------------------------------
REFERENCE_DRIVER = r"""
import json, sys, time
import requests

judge_url, job_path, out_path = sys.argv[1:4]
OPENROUTER = "https://openrouter.ai/api/v1"
_request = requests.Session.request

def request(self, method, url, *args, **kwargs):
    if url.startswith(OPENROUTER):  # the one URL 0.2.7 fixes in its code: to the local judge
        url = judge_url + url[len(OPENROUTER):]
    return _request(self, method, url, *args, **kwargs)

requests.Session.request = request
from fallom import evals

job = json.load(open(job_path))
if job.get("base_url"):
    evals.init(api_key=job["api_key"], base_url=job["base_url"])
items = [evals.DatasetItem(**item) for item in job["items"]]
start = time.perf_counter()
if job["kind"] == "evaluate":
    evals.evaluate(dataset=items, metrics=job["metrics"], judge_context=job.get("context"),
                   name=job.get("name"), verbose=False)
else:
    evals.compare_models(dataset=items, models=job["models"], metrics=job["metrics"],
                         name=job.get("name"), verbose=False)
seconds = time.perf_counter() - start
json.dump({"seconds": seconds, "metric_prompts": evals.METRIC_PROMPTS}, open(out_path, "w"))
"""


def subprocess_env(**extra: str) -> Dict[str, str]:
    """The environment of a child running this SDK: no FALLOM_ variable but ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FALLOM_", "OPENROUTER_"))}
    env.update(PYTHONPATH=str(Path(__file__).resolve().parent.parent), **extra)
    return env


def run_reference(python: Path, judge: JudgeServer, job: Dict[str, Any],
                  folder: Path, timeout: float = 600) -> Dict[str, Any]:
    """Run 0.2.7's evals on ``job`` against ``judge``; what the driver wrote."""
    job_path, out_path = folder / "job.json", folder / "out.json"
    job_path.write_text(json.dumps(job))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FALLOM_", "OPENROUTER_"))}
    env["OPENROUTER_API_KEY"] = JUDGE_KEY
    subprocess.run([str(python), "-I", "-c", REFERENCE_DRIVER, judge.base_url, str(job_path),
                    str(out_path)], check=True, timeout=timeout, env=env, capture_output=True)
    return json.loads(out_path.read_text())  # type: ignore[no-any-return]
