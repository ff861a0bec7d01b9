"""The LangChain callback handler with real langchain-core runnables and models."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List

import pytest

import fallom
from fallom.testing import CapturedSpans, capture_spans, view

from ._provider_server import ProviderServer

pytest.importorskip("langchain_core")
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda, RunnableParallel
from langchain_core.tools import tool


@pytest.fixture
def session() -> fallom.FallomSession:
    return fallom.session(config_key="lc", session_id="s-lc")


def fake_model(*answers: str) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([AIMessage(content=a) for a in answers]))


def by_id(spans: CapturedSpans) -> Dict[str, Any]:
    return {r["span_id"]: r for r in spans}


def test_a_chain_with_a_chat_model(session: fallom.FallomSession, spans: CapturedSpans) -> None:
    prompt = ChatPromptTemplate.from_messages([("system", "Be brief"), ("human", "{q}")])
    chain = prompt | fake_model("Paris is the capital.") | StrOutputParser()
    handler = session.langchain_callback()
    assert chain.invoke({"q": "Capital of France?"}, config={"callbacks": [handler]}) == (
        "Paris is the capital.")
    names = {r["name"]: r for r in spans}
    root = names["RunnableSequence"]
    model = names["GenericFakeChatModel"]
    assert "parent_span_id" not in root
    assert model["parent_span_id"] == root["span_id"]
    assert names["ChatPromptTemplate"]["parent_span_id"] == root["span_id"]
    assert model["kind"] == "llm"
    assert view(model).input == [{"role": "system", "content": "Be brief"},
                              {"role": "user", "content": "Capital of France?"}]
    assert view(model).output == "Paris is the capital."
    assert view(root).input == {"q": "Capital of France?"}
    assert all(r["session_id"] == "s-lc" for r in spans)


def test_streaming_records_time_to_first_token(session: fallom.FallomSession,
                                               spans: CapturedSpans) -> None:
    model = session.trace_model(fake_model("one two three"))
    chunks = [c.content for c in model.stream("hi")]
    assert "".join(chunks) == "one two three"
    (record,) = spans
    assert record["is_streaming"] is True
    assert view(record).time_to_first_token_ms >= 0
    assert view(record).output == "one two three"


def test_parallel_branches_batch_and_abatch_keep_their_parents(
    session: fallom.FallomSession, spans: CapturedSpans
) -> None:
    def branch(name: str) -> Any:
        model = fake_model(*[f"{name}-{i}" for i in range(20)])
        return RunnableLambda(lambda x: x, name=f"{name}-in") | model | StrOutputParser()

    parallel = RunnableParallel(left=branch("left"), right=branch("right"))
    handler = session.langchain_callback()
    results = parallel.batch(["a", "b", "c"], config={"callbacks": [handler]})
    assert len(results) == 3
    asyncio.run(parallel.abatch(["d", "e"], config={"callbacks": [handler]}))
    records = by_id(spans)
    models = [r for r in spans if r["name"] == "GenericFakeChatModel"]
    assert len(models) == 10
    for record in models:
        side = view(record).output.split("-")[0]
        chain = records[record["parent_span_id"]]
        siblings = [r for r in spans if r.get("parent_span_id") == chain["span_id"]]
        assert any(s["name"] == f"{side}-in" for s in siblings)
        assert chain["trace_id"] == record["trace_id"]
    roots = [r for r in spans if "parent_span_id" not in r]
    assert len(roots) == 5


def test_tools_retrievers_and_errors(session: fallom.FallomSession,
                                     spans: CapturedSpans) -> None:
    @tool
    def weather(city: str) -> str:
        """Weather in a city."""
        return f"sunny in {city}"

    class Docs(BaseRetriever):
        def _get_relevant_documents(self, query: str, *,
                                    run_manager: CallbackManagerForRetrieverRun
                                    ) -> List[Document]:
            return [Document(page_content=f"doc about {query}")]

    handler = session.langchain_callback()
    assert weather.invoke({"city": "Paris"}, config={"callbacks": [handler]}) == "sunny in Paris"
    Docs().invoke("cats", config={"callbacks": [handler]})

    def broken(_: Any) -> Any:
        raise RuntimeError("chain failed")

    with pytest.raises(RuntimeError, match="chain failed"):
        RunnableLambda(broken, name="broken").invoke(1, config={"callbacks": [handler]})
    tool_span, retriever, failed = spans
    assert (tool_span["kind"], tool_span["name"], view(tool_span).output) == (
        "tool", "weather", "sunny in Paris")
    assert (retriever["kind"], view(retriever).input, view(retriever).output) == (
        "retrieval", "cats", ["doc about cats"])
    assert failed["status"] == "ERROR"
    assert "chain failed" in failed["error_message"]


def test_root_runs_nest_under_the_current_fallom_span(session: fallom.FallomSession,
                                                      spans: CapturedSpans) -> None:
    model = session.trace_model(fake_model("hi"))
    with fallom.span("request") as request:
        model.invoke("hello")
    call = spans.by_name("GenericFakeChatModel")
    assert call["parent_span_id"] == request.span_id


def test_langchain_openai_against_the_local_server(
    provider_server: ProviderServer, session: fallom.FallomSession, spans: CapturedSpans
) -> None:
    langchain_openai = pytest.importorskip("langchain_openai")
    provider_server.first_chunk_delay = 0.2
    model = session.trace_model(langchain_openai.ChatOpenAI(
        model="gpt-4o-mini", api_key="k", base_url=provider_server.url + "/v1", max_retries=0,
        temperature=0.3))
    assert model.invoke("Say hello").content == "Hello"
    streamed = "".join(c.content for c in model.stream("Say hello"))
    assert streamed == "Hello"

    async def run_async() -> str:
        message = await model.ainvoke("Say hello")
        return str(message.content)

    assert asyncio.run(run_async()) == "Hello"
    plain, stream, async_call = spans
    assert (plain["model"], view(plain).prompt_tokens, view(plain).completion_tokens) == (
        "gpt-4o-mini-2024-07-18", 9, 2)
    assert plain["attributes"]["gen_ai.provider.name"] == "openai"
    assert plain["attributes"]["gen_ai.request.temperature"] == 0.3
    assert 200 <= view(stream).time_to_first_token_ms <= view(stream).duration_ms
    assert view(async_call).output == "Hello"


def test_langgraph_nodes_in_parallel_keep_their_parents(session: fallom.FallomSession,
                                                        spans: CapturedSpans) -> None:
    langgraph = pytest.importorskip("langgraph.graph")
    from typing import TypedDict

    class State(TypedDict, total=False):
        question: str
        left: str
        right: str

    left_model, right_model = fake_model("left answer"), fake_model("right answer")

    def plan(state: State) -> State:
        return {"question": state["question"].strip()}

    def left(state: State) -> State:
        return {"left": str(left_model.invoke(state["question"]).content)}

    def right(state: State) -> State:
        return {"right": str(right_model.invoke(state["question"]).content)}

    graph = langgraph.StateGraph(State)
    graph.add_node("plan", plan)
    graph.add_node("left", left)
    graph.add_node("right", right)
    graph.add_edge(langgraph.START, "plan")
    graph.add_edge("plan", "left")
    graph.add_edge("plan", "right")
    graph.add_edge("left", langgraph.END)
    graph.add_edge("right", langgraph.END)
    app = graph.compile()
    result = app.invoke({"question": " why? "},
                        config={"callbacks": [session.langchain_callback()]})
    assert (result["left"], result["right"]) == ("left answer", "right answer")
    records = by_id(spans)
    models = [r for r in spans if r["kind"] == "llm"]
    assert sorted(view(r).output for r in models) == ["left answer", "right answer"]
    for model in models:
        node = records[model["parent_span_id"]]
        while node["name"] not in ("left", "right"):
            node = records[node["parent_span_id"]]
        assert view(model).output.startswith(node["name"])
    assert len({r["trace_id"] for r in spans}) == 1
    assert len([r for r in spans if "parent_span_id" not in r]) == 1


def test_a_chat_model_run_takes_the_pending_managed_prompt(session: fallom.FallomSession,
                                                            config_server: Any) -> None:
    config_server.add_prompt("support", "Be brief", "{{q}}")
    fallom.init(api_key="k", configs_url=config_server.url, prompts_url=config_server.url,
                traces_url=config_server.url)
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | fake_model("Paris.")
    with capture_spans() as spans:
        fallom.prompts.get("support")
        chain.invoke({"q": "Capital?"}, config={"callbacks": [session.langchain_callback()]})
    marked = [r["name"] for r in spans if "prompt_key" in r]
    assert marked == ["GenericFakeChatModel"]  # the LLM run, not the chain or the template
    assert spans.by_name("GenericFakeChatModel")["prompt_version"] == 1
