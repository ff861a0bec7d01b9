"""A small agent built from your own helper functions, traced by fallom.

Runs with no API key and no network: the "LLM" is a local stand-in and the
trace tree is printed to stderr (debug mode). With OPENAI_API_KEY set, the
completion step calls the real OpenAI API instead.

Pointed at `fallom serve --config examples/fallom.toml` (export the lines it
prints), the traces are stored there, the model comes from the served A/B
config and the prompt from the served template; `fallom traces` lists them.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Iterator, List

import fallom

DOCS = {
    "fallom": "fallom traces LLM calls, assigns models per session and serves prompts.",
    "tracing": "Every traced call records model, latency, tokens and input/output.",
    "privacy": "With capture_content=False no prompt or completion text leaves the process.",
}


@fallom.span("retrieve", kind="retrieval")
def retrieve(question: str) -> List[str]:
    """Pick the documents that share a word with the question."""
    words = set(question.lower().split())
    return [text for key, text in DOCS.items() if key in words] or list(DOCS.values())[:1]


@fallom.trace_llm(name="complete", provider="local")
def complete(prompt: str, model: str = "stand-in-mini") -> str:
    """One completion: the real OpenAI API when a key is set, else a canned answer."""
    if os.environ.get("OPENAI_API_KEY"):
        from openai import OpenAI

        response = OpenAI().chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}])
        return response.choices[0].message.content or ""
    time.sleep(0.02)  # pretend to think
    span = fallom.current_span()
    span.set_model(model)
    span.record_usage(prompt_tokens=len(prompt.split()), completion_tokens=12)
    return "Answer from the documents, citing what fallom records for each call."


@fallom.trace_llm(name="stream_answer")
def stream_answer(plan: str) -> Iterator[str]:
    """Stream the final answer token by token, as a chat model would."""
    time.sleep(0.01)  # time to first token
    for token in plan.split():
        yield token + " "


def plan_prompt(question: str, docs: List[str]) -> str:
    """The managed prompt when a server provides it, else the same text built here."""
    variables = {"question": question, "documents": "; ".join(docs)}
    try:
        prompt = fallom.prompts.get("quickstart-plan", variables=variables)
        return f"{prompt.system}\n{prompt.user}"
    except ValueError:  # local mode: no server to manage prompts
        return f"Question: {question}\nDocuments: {variables['documents']}"


def agent(question: str, user: str) -> str:
    session = fallom.session(config_key="quickstart-agent", session_id=str(uuid.uuid4()),
                             customer_id=user, tags=["quickstart"])
    # the A/B test, when served (in async code: await session.get_model(fallback=...))
    model = fallom.models.get(session.config_key, session.session_id, fallback="stand-in-mini",
                              customer_id=user)
    with session, fallom.span("agent", kind="agent"):
        docs = retrieve(question)
        plan = complete(plan_prompt(question, docs), model=model)
        return "".join(stream_answer(plan)).strip()


def main() -> None:
    fallom.init(debug=True)  # no FALLOM_API_KEY: local mode, nothing leaves the process
    print(agent("What does fallom record for tracing?", user="demo-user"))
    fallom.shutdown()


if __name__ == "__main__":
    main()
