"""Differential test: 0.2.7's README and public functions, run by 0.2.7 and by this SDK.

``tests/reference/_drive_successor.py`` runs every Python block of the published
``fallom==0.2.7``'s README and one call of each of its public functions, once
under 0.2.7 (its own virtual environment) and once under this SDK, each against
a recording backend of its own and the same fake provider. What the calls
returned or raised and what reached the backend (per step, per route: the
bodies with ids, times and durations masked) must be equal, or be one of the
documented differences of ``DOCUMENTED`` (each with its reason; README.md,
"Coming from fallom 0.2.x"). A new difference fails; so does a documented one
that is no longer there.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from collections import Counter
from fnmatch import fnmatchcase
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

import pytest

from ._config_server import ConfigServer
from ._http import send_json
from ._provider_server import ProviderServer
from .reference.make_fixtures import HERE, reference_python

DRIVER = HERE / "_drive_successor.py"
# what the suite's provider SDKs are, so 0.2.7's environment can be given the same ones
LENT = ("openai", "anthropic", "google-generativeai", "langchain-core", "langchain-openai")


class Difference(NamedTuple):
    step: str
    where: str  # "returned", or the route and record: "POST /v1/traces chat.completions.create"
    path: str  # inside it, "/"-separated
    theirs: Any  # 0.2.7's
    ours: Any


ANY, ABSENT = "<any>", "<absent>"


class Documented(NamedTuple):
    step: str  # fnmatch patterns
    where: str
    path: str
    reason: str
    theirs: Any = ANY  # when given, the values it is about
    ours: Any = ANY


TRACES = "POST /v1/traces *"
PINNED = ("a prompt version other than the current one is fetched (GET /prompts/{key}/version/{n},"
          " docs/design.md §3.6); 0.2.7 only knew the versions /prompts lists, the current ones,"
          " and raised ValueError for any other")
WRAPPED = ("wrap_* returns a traced proxy and leaves the client as it is: use what it returns, as"
           " 0.2.7's README does; 0.2.7 replaced the client's methods, so the client passed in was"
           " traced too")
NO_NULLS = "a parameter the call did not pass is left out, not sent as null"
STREAM = ("0.2.7's wrapper raised AttributeError on stream=True (it read .choices off the Stream,"
          " after the request was made) and recorded an ERROR; the stream is returned, and the"
          " call recorded when it ends")

# Each difference from 0.2.7 that stays, and why (README.md, "Coming from fallom 0.2.x").
DOCUMENTED: List[Documented] = [
    # -- records: what 0.2.7 sent, and more
    Documented("*", TRACES, "/body/attributes/gen_ai.*", "OpenTelemetry GenAI attributes beside "
               "the raw ones (docs/design.md §3.4)", theirs=ABSENT),
    Documented("*", TRACES, "/body/attributes/error.type", "the error's type, as OpenTelemetry "
               "names it (docs/design.md §3.4)", theirs=ABSENT),
    Documented("*", TRACES, "/body/attributes/http.response.status_code", "the provider's HTTP "
               "status on a failed call (docs/design.md §3.4)", theirs=ABSENT),
    Documented("*", TRACES, "/body/attributes/fallom.raw.timings/durationUs", "the duration in "
               "microseconds too, beside 0.2.7's milliseconds", theirs=ABSENT),
    Documented("*", TRACES, "/body/attributes/fallom.raw.usage/*", "the provider's whole usage "
               "object: 0.2.7's counts under their names, and the provider's details",
               theirs=ABSENT),
    Documented("*", TRACES, "/body/attributes/fallom.raw.request/*", NO_NULLS, theirs=None,
               ours=ABSENT),
    Documented("*", "POST /v1/traces messages.create *",
               "/body/attributes/fallom.raw.response/content/*/id", "Anthropic's content blocks "
               "as the API returns them: a text block has no id (0.2.7: null)", theirs=None,
               ours=ABSENT),
    Documented("*", "POST /v1/traces messages.create *",
               "/body/attributes/fallom.raw.response/content/*/citations", "Anthropic's content "
               "blocks as the API returns them: with their citations", theirs=ABSENT, ours=None),
    Documented("*", TRACES, "/body/attributes/fallom.raw.timings/toolCalls", "0.2.7 listed the "
               "tool calls in the timings with callTime always 0 (never measured); they are in "
               "fallom.raw.response's toolCalls", ours=ABSENT),
    Documented("FallomSession.wrap_openai: error", TRACES, "/body/error_message", "the "
               "exception's type leads the message (NotFoundError: ...); with capture_content "
               "off it is the type alone (docs/design.md §3.3)"),
    Documented("FallomSession.wrap_openai: error", TRACES, "/body/attributes/fallom.raw.*",
               "a failed call keeps its request and timings; 0.2.7 sent neither",
               theirs=ABSENT),
    Documented("*", "POST /v1/traces generateContent *", "/body/attributes/fallom.raw.request",
               "the request as an object, {contents, model}, as for the other providers; "
               "0.2.7 sent the contents alone, as str()"),
    Documented("*", "POST /v1/traces generateContent *", "/body/model", "the model the provider "
               "answered with (its modelVersion), as for the other providers (docs/design.md "
               "§3.3); 0.2.7 sent the GenerativeModel's name"),
    *(Documented("FallomSession.wrap_openai: stream", "*", path, STREAM) for path in (
        "/", "/body/status", "/body/error_message", "/body/is_streaming",
        "/body/time_to_first_token_ms", "/body/model", "/body/attributes/fallom.raw.*")),
    Documented("FallomSession.langchain_callback", TRACES, "<count>", "LangChain runs are "
               "recorded under LangChain's run name (ChatOpenAI, a chain's name) with OpenAI's "
               "message roles; 0.2.7 named every chat model call chat.completions.create"),
    Documented("*", "POST /sessions", "<repeats>", "an assignment is reported once per config, "
               "version and session; 0.2.7 posted it again on every models.get"),
    # -- prompts
    *(Documented("prompts.get, then two LLM calls", "*", path, "a prompt tags the next LLM "
                 "call only, as 0.2.7's README says; 0.2.7 never cleared its prompt context, so "
                 "every later call there was tagged too")
      for path in ("/body/prompt_*", "/context_after_one_call")),
    Documented("*", "returned", "*/type", "the prompt's class is Prompt; "
               "fallom.prompts.PromptResult is the same class", theirs="PromptResult",
               ours="Prompt"),
    Documented("prompts.init, get, get_ab*", "returned", "/pinned/*", PINNED),
    Documented("prompts.init, get, get_ab*", "returned", "/ab/*", PINNED),
    Documented("prompts.init, get, get_ab*", "returned", "/context_after_ab/*", PINNED),
    Documented("README: Prompt A/B Testing", "returned", "*", PINNED),
    Documented("<every step>", "GET", "/prompts/onboarding/version/*", PINNED),
    # -- sessions, clients, init
    Documented("*", "returned", "*/metadata", "get_context() gives an empty mapping where 0.2.7 "
               "gave None (the context is frozen)", theirs=None, ours={}),
    Documented("*", "returned", "*/tags", "get_context() gives an empty tuple where 0.2.7 gave "
               "None (the context is frozen)", theirs=None, ours=[]),
    Documented("*", "returned", "*/same_object", WRAPPED, theirs=True, ours=False),
    Documented("FallomSession.wrap_openai: the client passed, used", TRACES, "<count>", WRAPPED),
    Documented("fallom.init without a key", "returned", "*", "without an API key fallom runs in "
               "local mode: nothing is sent and nothing raises; 0.2.7 raised ValueError"),
    Documented("fallom.init twice", "returned", "/should_capture_content", "a second init() "
               "configures what it is given; 0.2.7's tracing ignored every init() after the "
               "first"),
    Documented("README: Initialization Options", "returned", "/raised", "the block's "
               "placeholder URLs (\"...\") are refused by init() with a ValueError naming the "
               "parameter; 0.2.7 took them and failed silently on every request"),
]


# -- the backend -------------------------------------------------------------------------
class RecordingBackend(ConfigServer):
    """Configs, prompts and prompt A/B tests as ``ConfigServer`` serves them; every
    request recorded (method, path, headers, body) and every POST answered 200 ``{}``,
    without advertising batches, as the Fallom cloud answers."""

    def __init__(self) -> None:
        self.seen: List[Dict[str, Any]] = []
        super().__init__()

    def on_get(self, handler: BaseHTTPRequestHandler) -> None:
        self._note(handler, b"")
        super().on_get(handler)

    def on_post(self, handler: BaseHTTPRequestHandler) -> None:
        self._note(handler, handler.rfile.read(int(handler.headers.get("Content-Length") or 0)))
        send_json(handler, 200, {})

    def _note(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        with self.lock:
            self.seen.append({"method": handler.command, "path": handler.path,
                              "headers": dict(handler.headers), "body": raw})


def catalog(server: ConfigServer) -> None:
    """What the README's blocks ask for: its config, prompt and A/B test keys."""
    server.add_config("my-config", [{"model": "gpt-4o", "weight": 50},
                                    {"model": "claude-3-5-sonnet", "weight": 50}])
    server.add_config("my-config", [
        {"model": "gpt-4o", "weight": 50}, {"model": "claude-3-5-sonnet", "weight": 50},
        {"model": "gpt-4o-enterprise", "weight": 0}], targeting={
        "individualTargets": [{"field": "customerId", "value": "vip-1", "variantIndex": 1}],
        "rules": [{"conditions": [{"field": "plan", "operator": "eq", "value": "enterprise"}],
                   "variantIndex": 2}]})
    for key in ("summarizer-config", "my-app", "my-agent"):
        server.add_config(key, [{"model": "gpt-4o", "weight": 30},
                                {"model": "claude-3-5-sonnet", "weight": 70}])
    server.add_prompt("onboarding", "You help {{company}}.", "Hi {{user_name}}")
    server.add_prompt("onboarding", "You help {{ company }}, v2.", "Hello {{user_name}}!")
    server.ab_tests = [{"key": "onboarding-test", "version": 1, "variants": [
        {"prompt_key": "onboarding", "weight": 50},
        {"prompt_key": "onboarding", "prompt_version": 1, "weight": 50}]}]


# -- running the driver ------------------------------------------------------------------
def readme_of(python: Path) -> str:
    """0.2.7's README: the long description in its wheel's METADATA."""
    done = subprocess.run([str(python), "-I", "-c", "import importlib.metadata as m; "
                           "print(m.metadata('fallom').get_payload())"],
                          capture_output=True, text=True, check=True, timeout=60)
    return done.stdout


def readme_blocks(text: str) -> List[Tuple[str, str]]:
    """``(section heading, source)`` of each Python block; a repeated heading gets " #2"."""
    found: List[Tuple[str, str]] = []
    heading, seen = "", Counter[str]()
    for match in re.finditer(r"^(#+ [^\n]*)$|^```python\n(.*?)^```", text, re.M | re.S):
        if match.group(1):
            heading = match.group(1).lstrip("#").strip()
            continue
        seen[heading] += 1
        found.append((heading if seen[heading] == 1 else f"{heading} #{seen[heading]}",
                      match.group(2)))
    return found


def lend_or_install(python: Path) -> Optional[str]:
    """The site directory to lend 0.2.7's interpreter, when it runs this Python's minor
    version; else None, after installing the same provider SDK versions into it."""
    probe = [str(python), "-I", "-c", "import sys; print(sys.version_info[:2])"]
    theirs = subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()
    if theirs == str(tuple(sys.version_info[:2])):
        return str(sysconfig.get_paths()["purelib"])
    import importlib.metadata as metadata

    try:
        reference_python(*(f"{name}=={metadata.version(name)}" for name in LENT))
    except (subprocess.CalledProcessError, metadata.PackageNotFoundError) as exc:
        pytest.skip(f"the provider SDKs cannot be installed for fallom 0.2.7: {exc}")
    return None


def environment(backend: str, provider: str) -> Dict[str, str]:
    """0.2.7's README "Environment Variables", pointed at the local servers; the provider
    SDKs find the fake provider as they find the real one."""
    kept = {k: v for k, v in os.environ.items()
            if not k.startswith(("FALLOM_", "OPENAI_", "ANTHROPIC_", "GOOGLE_", "GEMINI_"))}
    return {**kept, "FALLOM_TRACES_URL": backend, "FALLOM_CONFIGS_URL": backend,
            "FALLOM_PROMPTS_URL": backend, "FALLOM_CAPTURE_CONTENT": "true",
            "OPENAI_BASE_URL": provider + "/v1", "OPENAI_API_KEY": "sk-readme",
            "ANTHROPIC_BASE_URL": provider, "ANTHROPIC_API_KEY": "sk-ant-readme",
            "NO_PROXY": "127.0.0.1,localhost", "PYTHONWARNINGS": "ignore"}


def drive(python: str, backend: str, provider: str, blocks: Path, out: Path,
          lent: Optional[str], reference: bool) -> subprocess.Popen[str]:
    """Start the driver; the reference isolated (-I), so no PYTHONPATH can change its fallom."""
    command = [python, *(["-I"] if reference else []), str(DRIVER), backend, provider,
               str(blocks), str(out)]
    return subprocess.Popen(command + ([lent] if lent else []), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=environment(backend, provider),
                            cwd=str(out.parent))


class Run(NamedTuple):
    steps: Dict[str, Dict[str, Any]]
    requests: List[Dict[str, Any]]
    stderr: str


def finish(proc: subprocess.Popen[str], out: Path, backend: RecordingBackend) -> Run:
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-4000:]
    text = out.read_text().replace(backend.url, "<backend>")  # each side has its own
    steps = {s["step"]: s for s in json.loads(text)["steps"]}
    with backend.lock:
        return Run(steps, list(backend.seen), stderr)


# -- what reached the backend, masked ----------------------------------------------------
HEX = {"trace_id": 32, "span_id": 16, "parent_span_id": 16}
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
TIMES = ("duration_ms", "time_to_first_token_ms")


def masked_record(record: Dict[str, Any]) -> Dict[str, Any]:
    """A trace record with ids, times and durations replaced by what they are."""
    out = dict(record)
    for key, size in HEX.items():
        if key in out:
            out[key] = f"<hex{size}>" if re.fullmatch(f"[0-9a-f]{{{size}}}", str(out[key])) \
                else f"<not hex{size}: {out[key]!r}>"
    for key in ("start_time", "end_time"):
        if key in out:
            out[key] = "<time>" if ISO.fullmatch(str(out[key])) else f"<not ISO: {out[key]!r}>"
    for key in TIMES:
        if key in out:
            out[key] = "<ms>" if type(out[key]) is int else f"<not ms: {out[key]!r}>"
    attributes = out.get("attributes")
    if isinstance(attributes, dict):
        out["attributes"] = {k: _raw(k, v) for k, v in attributes.items()}
    return out


def _raw(key: str, value: Any) -> Any:
    """A ``fallom.raw.*`` JSON string, parsed (its timings masked), so parts can differ."""
    if not key.startswith("fallom.raw.") or not isinstance(value, str):
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        return f"<not JSON: {value[:40]!r}>"
    if key == "fallom.raw.timings" and isinstance(parsed, dict):
        return {k: "<ms>" if type(v) is int else v for k, v in parsed.items()}
    return parsed


def by_key(requests: List[Dict[str, Any]]) -> Dict[str, List[Dict[str, Any]]]:
    """The POSTs of each API key (each step has its own), masked."""
    found: Dict[str, List[Dict[str, Any]]] = {}
    for request in requests:
        if request["method"] != "POST":
            continue
        headers = {k.lower(): v for k, v in request["headers"].items()}
        key = headers.get("authorization", "<none>").replace("Bearer ", "")
        body: Any = request["body"].decode("utf-8", "replace")
        try:
            body = json.loads(body)
        except ValueError:
            pass
        record = request["path"] == "/v1/traces" and isinstance(body, dict)
        found.setdefault(key, []).append({
            "route": f"POST {request['path']}", "content-type": headers.get("content-type"),
            "content-encoding": headers.get("content-encoding"),
            "body": masked_record(body) if record else body,
            # a step's records of one name and session pair up in the order they were made
            "order": [body.get("start_time"), body.get("end_time")] if record else None})
    return found


# -- comparing ---------------------------------------------------------------------------
def diff(theirs: Any, ours: Any, path: str = "") -> Iterator[Tuple[str, Any, Any]]:
    """Each place two JSON values differ: ``(path, theirs, ours)``; absent is "<absent>"."""
    if isinstance(theirs, dict) and isinstance(ours, dict):
        for key in sorted(set(theirs) | set(ours), key=str):
            yield from diff(theirs.get(key, "<absent>"), ours.get(key, "<absent>"),
                            f"{path}/{key}")
    elif isinstance(theirs, list) and isinstance(ours, list) and len(theirs) == len(ours):
        for i, (a, b) in enumerate(zip(theirs, ours)):
            yield from diff(a, b, f"{path}/{i}")
    elif theirs != ours or type(theirs) is not type(ours):
        yield path or "/", theirs, ours


def sent_differences(step: str, theirs: List[Dict[str, Any]],
                     ours: List[Dict[str, Any]]) -> Iterator[Difference]:
    """Per route (and per record name and session for traces), the requests in order."""
    def grouped(requests: List[Dict[str, Any]]) -> Dict[str, List[Dict[str, Any]]]:
        groups: Dict[str, List[Dict[str, Any]]] = {}
        for request in requests:
            body = request["body"]
            where = request["route"]
            if where == "POST /v1/traces" and isinstance(body, dict):
                where += f" {body.get('name')} {body.get('session_id')}"
            groups.setdefault(where, []).append(request)
        for where, group in groups.items():
            if where.startswith("POST /v1/traces "):
                group.sort(key=lambda r: r["order"])
            else:
                group.sort(key=lambda r: json.dumps(r, sort_keys=True))
        return groups

    mine, reference = grouped(ours), grouped(theirs)
    for where in sorted(set(mine) | set(reference)):
        a, b = reference.get(where, []), mine.get(where, [])
        if len(a) != len(b):
            same = not where.startswith("POST /v1/traces") and _distinct(a) == _distinct(b)
            yield Difference(step, where, "<repeats>" if same else "<count>", len(a), len(b))
            continue
        for x, y in zip(a, b):
            x = {k: v for k, v in x.items() if k != "order"}
            y = {k: v for k, v in y.items() if k != "order"}
            for path, p, q in diff(x, y):
                yield Difference(step, where, path, p, q)


def _distinct(requests: List[Dict[str, Any]]) -> List[str]:
    return sorted({json.dumps(r["body"], sort_keys=True) for r in requests})


def differences(theirs: Run, ours: Run) -> List[Difference]:
    """Every difference: per step, what it returned or raised and what each route received
    (a key no step was given, as a README block's own, is a step of its own); GET routes
    over the whole run."""
    found: List[Difference] = []
    for name in sorted(set(theirs.steps) | set(ours.steps)):
        a, b = theirs.steps.get(name), ours.steps.get(name)
        if a is None or b is None:
            found.append(Difference(name, "step", "<ran>", a is not None, b is not None))
            continue
        for key in ("raised", "returned"):
            found += [Difference(name, key, p, x, y) for p, x, y in diff(a[key], b[key])]
    sent_a, sent_b = by_key(theirs.requests), by_key(ours.requests)
    names = {s["key"]: s["step"] for s in theirs.steps.values()}
    for key in sorted(set(sent_a) | set(sent_b)):
        found += sent_differences(names.get(key, f"key {key}"), sent_a.get(key, []),
                                  sent_b.get(key, []))
    routes = [{r["path"].split("?")[0] for r in run.requests if r["method"] == "GET"}
              for run in (theirs, ours)]  # a background refresh may come in any step
    found += [Difference("<every step>", "GET", path, path in routes[0], path in routes[1])
              for path in sorted(routes[0] ^ routes[1])]
    return found


def undocumented(found: List[Difference]) -> Tuple[List[Difference], List[Documented]]:
    """The differences no entry documents, and the entries no difference needs."""
    def covers(entry: Documented, d: Difference) -> bool:
        return all(fnmatchcase(value, pattern) for value, pattern in
                   ((d.step, entry.step), (d.where, entry.where), (d.path, entry.path))) \
            and entry.theirs in (ANY, d.theirs) and entry.ours in (ANY, d.ours)

    new = [d for d in found if not any(covers(e, d) for e in DOCUMENTED)]
    stale = [e for e in DOCUMENTED if not any(covers(e, d) for d in found)]
    return new, stale


# -- the test ----------------------------------------------------------------------------
@pytest.fixture
def backends() -> Iterator[Tuple[RecordingBackend, RecordingBackend]]:
    pair = (RecordingBackend(), RecordingBackend())
    for server in pair:
        catalog(server)
    yield pair
    for server in pair:
        server.close()


@pytest.mark.timeout(900)  # the first run also makes the reference's virtual environment
def test_0_2_7s_readme_and_public_functions_do_the_same_here(
        backends: Tuple[RecordingBackend, RecordingBackend], provider_server: ProviderServer,
        tmp_path: Path) -> None:
    try:
        python = reference_python()
    except RuntimeError as exc:  # no interpreter on this machine can run the reference
        pytest.skip(str(exc))
    blocks = readme_blocks(readme_of(python))
    assert len(blocks) >= 16, "0.2.7's README has 16 Python blocks"
    readme = tmp_path / "blocks.json"
    readme.write_text(json.dumps(blocks), encoding="utf-8")
    lent = lend_or_install(python)
    theirs_backend, ours_backend = backends
    theirs_out, ours_out = tmp_path / "theirs.json", tmp_path / "ours.json"
    procs = [drive(str(python), theirs_backend.url, provider_server.url, readme, theirs_out,
                   lent, reference=True),
             drive(sys.executable, ours_backend.url, provider_server.url, readme, ours_out,
                   None, reference=False)]
    try:
        theirs = finish(procs[0], theirs_out, theirs_backend)
        ours = finish(procs[1], ours_out, ours_backend)
    finally:
        for proc in procs:
            if proc.poll() is None:  # one failed: the other is not left running
                proc.kill()
                proc.communicate()
    assert "internal error" not in ours.stderr, ours.stderr[-4000:]
    for run in (theirs, ours):  # every block ran, as a step of its own
        assert sum(name.startswith("README: ") for name in run.steps) == len(blocks)
    found = differences(theirs, ours)
    report = tmp_path / "differences.json"  # with what each side sent, for a reader
    report.write_text(json.dumps({"differences": [d._asdict() for d in found],
                                  "sent": {"0.2.7": by_key(theirs.requests),
                                           "ours": by_key(ours.requests)}},
                                 indent=1, default=str))
    new, stale = undocumented(found)
    assert new == [], f"{len(new)} new differences (all in {report}):\n" + "\n".join(
        json.dumps(d._asdict(), default=str) for d in new[:40])
    assert stale == [], f"documented, but no longer different: {stale}"
    print(f"{len(found)} documented differences in {len(theirs.steps)} steps")

