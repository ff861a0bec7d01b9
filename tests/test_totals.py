"""Tokens and cost, on SQLite and PostgreSQL, through a real ``fallom serve``: prices from
the catalog file (matched exactly or by the longest "K-" prefix, reloaded with it), the
totals of a trace and of a session with its turns, the sessions page's figures, every
variant of every version on the experiments page, the favicon without a key."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests

from ._databases import db_url  # noqa: F401  (a fixture)
from ._serve_process import launch, stop

KEY = "totals-key"
CATALOG = '''
[configs.agent]
variants = [{ model = "gpt-4o", weight = 100 }, { model = "never-picked", weight = 0 }]

[prices."gpt-4o"]
input = 2.50
output = 10.00

[prices."gpt-4o-mini"]
input = 0.15
output = 0.60
'''


class Served:
    """A running ``fallom serve`` with a catalog file, read and written over HTTP."""

    def __init__(self, url: str, catalog: Path) -> None:
        self.url, self.catalog = url, catalog

    def post(self, body: Any, path: str = "/v1/traces") -> requests.Response:
        return requests.post(f"{self.url}{path}", json=body, timeout=10,
                             headers={"Authorization": f"Bearer {KEY}"})

    def get(self, path: str, key: Optional[str] = KEY) -> requests.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return requests.get(f"{self.url}{path}", headers=headers, timeout=10)

    def json(self, path: str) -> Any:
        reply = self.get(path)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def rewrite(self, text: str) -> None:
        """A new catalog, with a later mtime than the one loaded."""
        before = self.catalog.stat().st_mtime
        self.catalog.write_text(text)
        os.utime(self.catalog, (before + 2, before + 2))


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[Served]:  # noqa: F811
    catalog = tmp_path / "fallom.toml"
    catalog.write_text(CATALOG)
    proc, url = launch("--db", db_url, "--config", str(catalog), "--api-key", KEY)
    yield Served(url, catalog)
    stop(proc)


def call(trace: int, i: int, model: Optional[str], prompt: Optional[int],
         completion: Optional[int], **extra: Any) -> Dict[str, Any]:
    """An LLM call as fallom 0.2.7 records it: tokens as top-level fields."""
    return {"trace_id": f"{trace:032x}", "span_id": f"{trace:08x}{i + 1:08x}",
            "parent_span_id": f"{trace:08x}{1:08x}", "name": f"chat-{i}", "kind": "llm",
            "model": model, "prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": None if prompt is None else prompt + (completion or 0),
            "start_time": f"2026-01-01T00:{trace:02d}:{i:02d}.000000Z", "duration_ms": 100.0,
            "status": "OK", **extra}


def root(trace: int, **extra: Any) -> Dict[str, Any]:
    return {"trace_id": f"{trace:032x}", "span_id": f"{trace:08x}{1:08x}", "name": "turn",
            "kind": "span", "start_time": f"2026-01-01T00:{trace:02d}:00.000000Z",
            "duration_ms": 900.0, "status": "OK", **extra}


def otlp_call(trace: int, i: int, model: str, prompt: int, completion: int) -> Dict[str, Any]:
    """An LLM call as OpenTelemetry's GenAI conventions send it (gen_ai.usage.*)."""
    start = 1_767_225_600_000_000_000 + trace * 60_000_000_000 + i * 1_000_000_000

    def number(key: str, value: int) -> Dict[str, Any]:
        return {"key": key, "value": {"intValue": str(value)}}

    return {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": f"{trace:032x}", "spanId": f"{trace:08x}{i + 1:08x}",
        "parentSpanId": f"{trace:08x}{1:08x}", "name": f"chat {model}", "kind": 3,
        "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 250_000_000),
        "status": {"code": 1},
        "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": model}},
                       number("gen_ai.usage.input_tokens", prompt),
                       number("gen_ai.usage.output_tokens", completion)]}]}]}]}


def test_a_trace_with_a_priced_and_an_unpriced_model_totals_its_tokens_and_cost(
        served: Served) -> None:
    assert served.post({"traces": [
        root(1), call(1, 1, "gpt-4o-2024-08-06", 1000, 500),  # takes gpt-4o's price
        call(1, 2, "gpt-4o-mini", 2000, 1000),  # its own price, not gpt-4o's
        call(1, 3, "mystery-model", 100, 10)]}).json()["stored"] == 4
    assert served.post(otlp_call(1, 4, "gpt-4o", 4000, 0)).status_code == 200

    trace = served.json(f"/api/traces/{1:032x}")
    gpt4o, mini, otlp = 1000 * 2.5 + 500 * 10, 2000 * 0.15 + 1000 * 0.6, 4000 * 2.5
    assert trace["totals"] == {"input_tokens": 7100, "output_tokens": 1510,
                               "total_tokens": 8610,
                               "cost_usd": pytest.approx((gpt4o + mini + otlp) / 1e6),
                               "unpriced_models": ["mystery-model"]}
    costs = {span["name"]: span.get("cost_usd") for span in trace["spans"]}
    assert costs == {"turn": None, "chat-1": pytest.approx(gpt4o / 1e6),
                     "chat-2": pytest.approx(mini / 1e6), "chat-3": None,
                     "chat gpt-4o": pytest.approx(otlp / 1e6)}
    assert served.json("/api/prices") == {"prices": {
        "gpt-4o": {"input": 2.5, "output": 10.0}, "gpt-4o-mini": {"input": 0.15, "output": 0.6}}}

    # a price changed in the catalog applies to the traces stored before it
    served.rewrite(CATALOG.replace("input = 2.50", "input = 5.00")
                   + '\n[prices."mystery"]\ninput = 1\noutput = 1\n')
    again = served.json(f"/api/traces/{1:032x}")["totals"]
    assert again["unpriced_models"] == []
    assert again["cost_usd"] == pytest.approx(
        (1000 * 5 + 500 * 10 + mini + 4000 * 5 + 110) / 1e6)
    # and without any price: no cost, every model with tokens unpriced
    served.rewrite(CATALOG.split("[prices")[0])
    bare = served.json(f"/api/traces/{1:032x}")
    assert bare["totals"]["cost_usd"] is None
    assert bare["totals"]["unpriced_models"] == sorted(
        ["gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-mini", "mystery-model"])
    assert all("cost_usd" not in span for span in bare["spans"])
    assert served.json("/api/prices") == {"prices": {}}


def test_a_session_reads_as_its_conversation_with_totals(served: Served) -> None:
    messages = [{"role": "user", "content": "refund?"}]
    for trace in (3, 1, 2):  # sent out of order: turns are oldest first
        served.post({"traces": [root(trace, session_id="s-1", customer_id="u-1"),
                                call(trace, 1, "gpt-4o", 100 * trace, 10 * trace,
                                     input={"messages": messages}, output=f"answer {trace}"),
                                call(trace, 2, None, 5, 5)]})
    served.post({"traces": [root(9, session_id="s-other")]})

    found = served.json("/api/sessions/s-1")
    assert found["totals"] == {"input_tokens": 600 + 15, "output_tokens": 60 + 15,
                               "total_tokens": 660 + 30,
                               "cost_usd": pytest.approx((600 * 2.5 + 60 * 10) / 1e6),
                               "unpriced_models": []}
    assert found["truncated"] is False
    assert [turn["trace_id"] for turn in found["turns"]] == [f"{t:032x}" for t in (1, 2, 3)]
    first = found["turns"][0]
    assert (first["name"], first["status"], first["duration_ms"], first["total_tokens"]) == (
        "turn", "OK", 900.0, 110 + 10)
    assert first["cost_usd"] == pytest.approx((100 * 2.5 + 10 * 10) / 1e6)
    assert [span["name"] for span in first["llm"]] == ["chat-1", "chat-2"]
    chat = first["llm"][0]
    assert (chat["model"], chat["input"], chat["output"], chat["prompt_tokens"],
            chat["completion_tokens"], chat["kind"]) == (
        "gpt-4o", {"messages": messages}, "answer 1", 100, 10, "llm")
    # the same span as the trace's page gives it, cost included
    trace_span = served.json(f"/api/traces/{1:032x}")["spans"][1]
    assert chat == trace_span

    listed = {s["session_id"]: s for s in served.json("/api/sessions")["sessions"]}
    assert (listed["s-1"]["input_tokens"], listed["s-1"]["output_tokens"]) == (615, 75)
    assert listed["s-1"]["cost_usd"] == pytest.approx((600 * 2.5 + 60 * 10) / 1e6)
    assert (listed["s-other"]["input_tokens"], listed["s-other"]["cost_usd"]) == (None, None)
    assert served.get("/api/sessions/nobody").json() == {"error": "no such session"}


def test_a_long_session_lists_its_first_200_turns(served: Served) -> None:
    records: List[Dict[str, Any]] = []
    for trace in range(1, 206):
        records.append({**root(trace % 60, session_id="long"), "trace_id": f"{trace:032x}",
                        "span_id": f"{trace:08x}{1:08x}",
                        "start_time": f"2026-01-01T{trace // 60:02d}:{trace % 60:02d}:00Z"})
    served.post({"traces": records})
    found = served.json("/api/sessions/long")
    assert found["truncated"] is True
    assert len(found["turns"]) == 200
    assert found["turns"][0]["trace_id"] == f"{1:032x}"


def test_experiments_list_every_variant_of_every_version_once(served: Served) -> None:
    reply = served.post({"config_key": "agent", "config_version": "1", "session_id": "s-1",
                         "assigned_model": "gpt-4o"}, path="/sessions")
    assert reply.status_code == 200, reply.text
    served.post({"traces": [root(1, session_id="s-1", config_key="agent"),
                            call(1, 1, "gpt-4o", 10, 10, session_id="s-1")]})
    served.rewrite(CATALOG.replace('weight = 100 }, { model = "never-picked", weight = 0',
                                   'weight = 50 }, { model = "claude", weight = 50'))
    (config,) = served.json("/api/experiments")["configs"]
    assert [v["version"] for v in config["versions"]] == [1, 2]
    rows = [(v["version"], v["variant"], v["sessions"], v["llm_calls"], v["p50_ms"])
            for v in config["variants"]]
    assert rows == [("1", "gpt-4o", 1, 1, 100.0), ("1", "never-picked", 0, 0, None),
                    ("2", "claude", 0, 0, None), ("2", "gpt-4o", 0, 0, None)]


def test_the_favicon_needs_no_key_and_unknown_ids_say_so(served: Served) -> None:
    for path in ("/favicon.ico", "/ui/favicon.svg"):
        icon = served.get(path, key=None)
        assert icon.status_code == 200
        assert icon.headers["Content-Type"] == "image/svg+xml"
        assert icon.content.lstrip().startswith(b"<svg")
    for path, said in ((f"/api/traces/{7:032x}", "no such trace"),
                       ("/api/traces/doesnotexist", "no such trace"),
                       ("/api/sessions/doesnotexist", "no such session")):
        reply = served.get(path)
        assert (reply.status_code, reply.json()) == (404, {"error": said})
    assert served.get("/api/prices", key=None).status_code == 401


def test_a_bad_price_is_refused_naming_its_key(tmp_path: Path) -> None:
    from fallom.server._catalog import CatalogError, validate

    for body, said in (('[prices."gpt-4o"]\ninput = -1\noutput = 1\n', "prices.gpt-4o: input"),
                       ('[prices."gpt-4o"]\ninput = nan\noutput = 1\n', "finite"),
                       ('[prices."m"]\ninput = 1\noutput = "1"\n', "prices.m: output"),
                       ('[prices."m"]\ninput = 1\noutput = 1\ncached = 1\n', "['cached']"),
                       ('[prices."m"]\ninput = 1\n', "prices.m: missing output"),
                       ('[prices]\nm = 3\n', "prices.m: must be a table")):
        path = tmp_path / "bad.toml"
        path.write_text(body)
        with pytest.raises(CatalogError) as raised:
            validate(str(path))
        assert said in str(raised.value), str(raised.value)
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"prices": {"gpt-4o": {"input": 2.5, "output": 10}}}))
    assert validate(str(good))["prices"]["gpt-4o"]["output"] == 10
