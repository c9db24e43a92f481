"""The LangGraph store and LangChain chat-model adapters on real chromadb, MiniLM and the bundled model."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import pytest
import torch
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage, ToolMessage
from langgraph.config import get_store
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.store.base import BaseStore, GetOp, PutOp, SearchOp

from agent.adapters import BadNamespace, ImprintChatModel, ImprintStore
from agent.llm import ChatLM, GenerationConfig
from agent.prompts import build_messages
from memory.chroma import make_client
from memory.embedder import Embedder
from memory.errors import InvalidInput
from memory.history import Event, History
from memory.recall import Recaller, format_memory_line
from memory.store import ObservationStore
from memory.weights.delta import Delta, LowRankUpdate
from memory.weights.weight_memory import WeightMemory

ALICE = ("acme", "alice")
SEASICK = {
    "aspect": "travel by sea",
    "value": "boat trips and cruises",
    "polarity": "avoids",
    "evidence": "I get seasick easily, so I skip boat trips.",
    "confidence": 0.9,
}
VEGAN = {"aspect": "food", "value": "vegan meals", "evidence": "My kids are vegan, so we cook without meat."}
QUIET = {
    "aspect": "hotel atmosphere",
    "value": "quiet, no nightlife",
    "evidence": "I sleep early on holiday.",
}
MUSEUMS = {"aspect": "sightseeing", "value": "art museums", "evidence": "I could spend days in art museums."}
BOAT_QUESTION = "Any ideas for a day out on the coast? Maybe a boat tour?"
TOKENS = 16  # short answers keep the model tests quick


@pytest.fixture
def observations(tmp_path: Path, embedder: Embedder) -> Iterator[ObservationStore]:
    """A real observation store: embedded chromadb and SQLite history under this test's tmp_path."""
    history = History(tmp_path / "history.sqlite")
    yield ObservationStore(make_client(path=tmp_path / "chroma"), embedder, history)
    history.close()


@pytest.fixture
def acme(observations: ObservationStore) -> ImprintStore:
    return ImprintStore(observations, tenant="acme")


def seed(store: ImprintStore, namespace: tuple[str, ...], **values: dict[str, Any]) -> None:
    """Put each value under its keyword as key, in order (so listing order is keyword order)."""
    for key, value in values.items():
        store.put(namespace, key, value)


# -- the store inside a LangGraph graph -------------------------------------------------------------------


class Lookup(TypedDict, total=False):
    user: str
    question: str
    keys: list[str]
    scores: list[float]


def lookup_graph(store: ImprintStore, *, use_async: bool) -> Any:
    """One node that asks the graph's store (given as `store` and via `get_store()`) for the user's memory."""

    def search(state: Lookup, *, store: BaseStore) -> dict[str, Any]:
        assert get_store() is store
        hits = store.search(("acme", state["user"]), query=state["question"], limit=3)
        return {"keys": [h.key for h in hits], "scores": [h.score for h in hits]}

    async def asearch(state: Lookup, *, store: BaseStore) -> dict[str, Any]:
        hits = await store.asearch(("acme", state["user"]), query=state["question"], limit=3)
        return {"keys": [h.key for h in hits], "scores": [h.score for h in hits]}

    graph = StateGraph(Lookup)
    graph.add_node("search", asearch if use_async else search)
    graph.add_edge(START, "search")
    graph.add_edge("search", END)
    return graph.compile(store=store)


def test_a_graph_node_finds_the_relevant_observation_first(acme: ImprintStore) -> None:
    seed(acme, ALICE, vegan=VEGAN, seasick=SEASICK, quiet=QUIET, museums=MUSEUMS)
    seed(acme, ("acme", "bob"), bob_boats={**SEASICK, "polarity": "likes", "evidence": "I love sailing."})
    result = lookup_graph(acme, use_async=False).invoke({"user": "alice", "question": BOAT_QUESTION})
    assert result["keys"][0] == "seasick"
    assert "bob_boats" not in result["keys"]
    assert len(result["keys"]) == 3
    assert result["scores"] == sorted(result["scores"], reverse=True)
    assert all(-1.0 <= s <= 1.0 for s in result["scores"])

    food = asyncio.run(
        lookup_graph(acme, use_async=True).ainvoke({"user": "alice", "question": "what to cook for my kids"})
    )
    assert food["keys"][0] == "vegan"


# -- store operations -------------------------------------------------------------------------------------


def test_put_get_update_and_delete_round_trip(acme: ImprintStore, observations: ObservationStore) -> None:
    acme.put(ALICE, "quiet", {"aspect": "hotel atmosphere", "value": "quiet"})
    item = acme.get(ALICE, "quiet")
    assert item is not None and item.key == "quiet" and item.namespace == ALICE
    assert item.value == {
        "aspect": "hotel atmosphere",
        "value": "quiet",
        "polarity": "likes",
        "evidence": "hotel atmosphere: likes quiet",  # no sentence given: the summary stands in
        "confidence": 1.0,
        "status": "pending",
        "thread_id": "",
        "explicit": True,
    }
    stored = observations.get("acme.alice", "quiet")  # the tenant-scoped user id underneath
    assert item.created_at.tzinfo is not None and item.updated_at == item.created_at
    assert item.created_at.timestamp() == pytest.approx(stored.created_at, abs=1e-6)

    changed = {**item.value, "value": "quiet, no nightlife", "polarity": "avoids", "status": "superseded"}
    acme.put(ALICE, "quiet", changed)  # an existing key: updated in place, not added again
    again = acme.get(ALICE, "quiet")
    assert again is not None and again.value == changed
    assert again.created_at == item.created_at
    events = [e.event for e in observations.history("acme.alice", "quiet")]
    assert events == [Event.CREATED, Event.UPDATED, Event.STATUS]

    acme.delete(ALICE, "quiet")
    assert acme.get(ALICE, "quiet") is None
    acme.delete(ALICE, "quiet")  # deleting what is gone is not an error, as BaseStore documents
    assert acme.get(ALICE, "never-written") is None
    assert observations.count("acme.alice") == 0


@pytest.mark.parametrize(
    "value",
    [
        {"value": "quiet"},  # no aspect
        {"aspect": "hotel", "value": "quiet", "colour": "red"},  # unknown field
        {"aspect": "hotel", "value": "quiet", "polarity": "adores"},
        {"aspect": "hotel", "value": "quiet", "confidence": 2.0},
        {"aspect": "hotel", "value": "quiet", "explicit": "yes"},
        {"aspect": "hotel", "value": "quiet", "status": "forgotten"},
        {"aspect": "   ", "value": "quiet"},
        ["aspect", "value"],
    ],
)
def test_bad_values_are_refused_and_nothing_is_written(
    acme: ImprintStore, observations: ObservationStore, value: Any
) -> None:
    with pytest.raises(InvalidInput):
        acme.put(ALICE, "k", value)
    assert observations.users() == []


def test_fields_an_update_cannot_change_are_refused(acme: ImprintStore) -> None:
    acme.put(ALICE, "k", {**QUIET, "thread_id": "t1"})
    with pytest.raises(InvalidInput, match="thread_id cannot change"):
        acme.put(ALICE, "k", {**QUIET, "thread_id": "t2", "value": "silent"})
    with pytest.raises(InvalidInput, match="ttl"):
        acme.batch([PutOp(ALICE, "k2", QUIET, ttl=5.0)])
    item = acme.get(ALICE, "k")
    assert item is not None and item.value["value"] == QUIET["value"]


def test_search_filters_limit_and_offset(acme: ImprintStore) -> None:
    seed(acme, ALICE, vegan=VEGAN, seasick=SEASICK, quiet=QUIET, museums=MUSEUMS)
    acme.put(ALICE, "quiet", {**QUIET, "status": "in_weights"})

    def keys(**search: Any) -> list[str]:
        return [item.key for item in acme.search(ALICE, **search)]

    listed = acme.search(ALICE)
    assert [i.key for i in listed] == ["vegan", "seasick", "quiet", "museums"]  # oldest first
    assert all(i.score is None for i in listed)
    assert keys(limit=2, offset=1) == ["seasick", "quiet"]
    assert keys(filter={"status": "pending"}) == ["vegan", "seasick", "museums"]
    assert keys(filter={"polarity": "avoids"}) == ["seasick"]
    assert keys(filter={"polarity": {"$ne": "avoids"}}, offset=2) == ["museums"]
    assert keys(filter={"aspect": "food", "status": "pending"}) == ["vegan"]
    assert keys(filter={"confidence": {"$gte": 0.95}}) == ["vegan", "quiet", "museums"]

    pending = {"status": "pending"}
    ranked = acme.search(ALICE, query=BOAT_QUESTION, filter=pending, limit=2)
    assert [i.key for i in ranked][:1] == ["seasick"] and len(ranked) == 2
    assert all(isinstance(i.score, float) for i in ranked)
    assert keys(query=BOAT_QUESTION, filter=pending, limit=1, offset=1) == [ranked[1].key]
    assert "quiet" not in keys(query="a calm hotel", filter=pending)
    assert keys(query=BOAT_QUESTION, filter={"aspect": "sightseeing"}) == ["museums"]
    assert keys(query=BOAT_QUESTION, limit=0) == []

    for bad in ({"colour": "red"}, {"polarity": {"$like": "av%"}}, {"confidence": {"$gt": "high"}}):
        with pytest.raises(InvalidInput):
            acme.search(ALICE, filter=bad)
    with pytest.raises(InvalidInput):
        acme.search(ALICE, limit=-1)


def test_tenants_never_see_each_other(observations: ObservationStore) -> None:
    acme, globex = ImprintStore(observations, tenant="acme"), ImprintStore(observations, tenant="globex")
    seed(acme, ALICE, seasick=SEASICK)
    seed(globex, ("globex", "alice"), sailing={**SEASICK, "polarity": "likes", "evidence": "I love boats."})

    assert [i.key for i in acme.search(ALICE, query=BOAT_QUESTION)] == ["seasick"]
    assert [i.key for i in globex.search(("globex", "alice"), query=BOAT_QUESTION)] == ["sailing"]
    assert acme.get(ALICE, "sailing") is None  # another tenant's key looks like a missing one
    assert acme.list_namespaces() == [ALICE]
    assert globex.list_namespaces() == [("globex", "alice")]
    with pytest.raises(InvalidInput, match="outside tenant"):
        acme.search(("globex", "alice"), query=BOAT_QUESTION)
    with pytest.raises(InvalidInput, match="in use"):  # ids are global; taking one reveals nothing else
        acme.put(ALICE, "sailing", QUIET)
    assert sorted(observations.users()) == ["acme.alice", "globex.alice"]

    open_store = ImprintStore(observations)  # auth off: a namespace is (user_id,)
    open_store.put(("carol",), "vegan", VEGAN)
    assert open_store.list_namespaces() == [("carol",)]  # scoped ids hold a '.', which labels may not
    assert [i.key for i in open_store.search(("carol",))] == ["vegan"]
    assert acme.list_namespaces() == [ALICE]


def test_list_namespaces_prefix_suffix_depth_limit_offset(acme: ImprintStore) -> None:
    for user in ("carol", "alice", "bob"):
        acme.put(("acme", user), f"{user}-food", VEGAN)  # keys are observation ids: unique store-wide
    everyone = [("acme", "alice"), ("acme", "bob"), ("acme", "carol")]
    assert acme.list_namespaces() == everyone
    assert acme.list_namespaces(prefix=("acme",)) == everyone
    assert acme.list_namespaces(prefix=("acme", "bob")) == [("acme", "bob")]
    assert acme.list_namespaces(prefix=("*", "carol")) == [("acme", "carol")]
    assert acme.list_namespaces(suffix=("alice",)) == [("acme", "alice")]
    assert acme.list_namespaces(prefix=("acme",), suffix=("*",), limit=1, offset=1) == [("acme", "bob")]
    assert acme.list_namespaces(max_depth=1) == [("acme",)]
    assert acme.list_namespaces(prefix=("globex",)) == []
    assert acme.list_namespaces(prefix=("acme", "alice", "x")) == []


@pytest.mark.parametrize(
    "namespace",
    [("acme",), ("alice",), ("acme", "alice", "notes"), ("globex", "alice"), ("acme", "al ice"), ()],
)
def test_bad_namespaces_are_refused(
    acme: ImprintStore, observations: ObservationStore, namespace: Any
) -> None:
    with pytest.raises(InvalidInput):
        acme.batch([PutOp(namespace, "k", VEGAN)])
    with pytest.raises(InvalidInput):
        acme.batch([GetOp(namespace, "k")])
    with pytest.raises(InvalidInput):
        acme.batch([SearchOp(namespace, query="food")])
    assert observations.users() == []


def test_namespace_errors_are_langgraphs_too(acme: ImprintStore) -> None:
    with pytest.raises(BadNamespace) as caught:
        acme.batch([GetOp(("acme", "a.b"), "k")])  # LangGraph's own label rule, reached through batch
    assert isinstance(caught.value, InvalidInput) and isinstance(caught.value, ValueError)
    with pytest.raises(InvalidInput):
        acme.get(ALICE, "../etc")  # a malformed key is bad input, not a missing item


# -- the chat model ---------------------------------------------------------------------------------------


def bare_answer(lm: ChatLM, question: str) -> str:
    return lm.generate(build_messages([], [], question), GenerationConfig(max_new_tokens=TOKENS))


@pytest.mark.slow
def test_invoke_answers_with_usage_metadata(lm: ChatLM) -> None:
    model = ImprintChatModel(lm=lm, user_id="alice", max_new_tokens=TOKENS)
    question = [HumanMessage("Name three colours.")]
    reply = model.invoke(question)
    assert isinstance(reply, AIMessage) and reply.content
    assert reply.content == bare_answer(lm, "Name three colours.")
    usage = reply.usage_metadata
    assert usage is not None
    assert usage["input_tokens"] == lm.encode_chat(model.build_prompt(question)).shape[-1]
    assert usage["output_tokens"] == lm.count_tokens(str(reply.content)) > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert reply.response_metadata["model_name"] == lm.name


@pytest.mark.slow
def test_stream_concatenates_to_the_invoke_answer(lm: ChatLM) -> None:
    model = ImprintChatModel(lm=lm, user_id="alice", max_new_tokens=TOKENS)
    question = "Name three colours."
    whole = model.invoke(question)
    chunks = list(model.stream(question))
    assert len(chunks) > 2  # token by token, then the usage chunk
    joined = chunks[0]
    for chunk in chunks[1:]:
        joined += chunk
    assert isinstance(joined, AIMessageChunk)
    assert joined.content == whole.content
    assert joined.usage_metadata == whole.usage_metadata

    words = str(whole.content).split()
    stop = words[len(words) // 2]  # a word from the middle of the answer
    cut = str(whole.content)[: str(whole.content).find(stop)]
    assert model.invoke(question, stop=[stop]).content == cut
    assert "".join(str(c.content) for c in model.stream(question, stop=[stop])) == cut


@pytest.mark.slow
def test_recalled_memory_reaches_the_prompt(
    lm: ChatLM, embedder: Embedder, observations: ObservationStore, acme: ImprintStore
) -> None:
    seed(acme, ALICE, seasick=SEASICK)
    seed(acme, ("acme", "bob"), vegan=VEGAN)
    line = format_memory_line(observations.get("acme.alice", "seasick"))
    model = ImprintChatModel(
        lm=lm, user_id="acme.alice", recaller=Recaller(observations), max_new_tokens=TOKENS
    )

    asked = [HumanMessage(BOAT_QUESTION)]
    assert model.build_prompt(asked) == build_messages([line], [], BOAT_QUESTION)  # the agent's prompt form
    assert line not in str(model.build_prompt(asked, user_id="acme.bob"))

    earlier = [SystemMessage("Answer in one sentence."), HumanMessage("Hi"), AIMessage("Hello!")]
    prompt = model.build_prompt([*earlier, *asked])
    assert prompt[0]["role"] == "system"
    assert prompt[0]["content"].startswith("Answer in one sentence.") and line in prompt[0]["content"]
    assert prompt[1:] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": BOAT_QUESTION},
    ]

    # the prompt actually generated from is that one: its token count includes the memory
    with_memory = model.invoke(asked).usage_metadata
    without = model.invoke(asked, user_id="acme.bob").usage_metadata
    assert with_memory is not None and without is not None
    assert with_memory["input_tokens"] == lm.encode_chat(build_messages([line], [], BOAT_QUESTION)).shape[-1]
    assert with_memory["input_tokens"] > without["input_tokens"]

    with pytest.raises(InvalidInput):
        model.invoke([ToolMessage("42", tool_call_id="c1")])


def strong_delta(seed: int) -> Delta:
    """A random low-rank change of one MLP projection, large enough to change greedy output."""
    g = torch.Generator().manual_seed(seed)
    down, up = torch.randn(2, 1536, generator=g), torch.randn(576, 2, generator=g)
    return Delta.of([LowRankUpdate("model.layers.8.mlp.down_proj", down * 0.5, up * 0.5)])


@pytest.mark.slow
def test_weight_memory_applies_per_user_and_only_while_generating(lm: ChatLM, tmp_path: Path) -> None:
    weights = WeightMemory(tmp_path / "weights", lm.model)
    weights.commit("alice", strong_delta(7), editor="test", settings={}, requests=[], metrics={}, seconds=0.0)
    model = ImprintChatModel(lm=lm, user_id="nobody", weights=weights, max_new_tokens=TOKENS)
    question = "Name three colours."
    bare = bare_answer(lm, question)

    assert model.invoke(question).content == bare  # no delta: exactly the bare model
    assert "".join(str(c.content) for c in model.stream(question)) == bare

    alice = model.invoke(question, user_id="alice").content
    assert alice != bare
    pieces: list[str] = []
    for chunk in model.stream(question, user_id="alice"):
        pieces.append(str(chunk.content))
        if len(pieces) == 1:  # between chunks the caller's own context has no delta active
            assert bare_answer(lm, question) == bare
    assert "".join(pieces) == alice  # the streaming worker thread ran under alice's delta

    async def astream() -> str:
        return "".join([str(c.content) async for c in model.bind(user_id="alice").astream(question)])

    assert asyncio.run(astream()) == alice
    assert bare_answer(lm, question) == bare


@pytest.mark.slow
def test_the_model_streams_inside_a_langgraph_graph(lm: ChatLM) -> None:
    model = ImprintChatModel(lm=lm, user_id="alice", max_new_tokens=TOKENS)

    def answer(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("answer", answer)
    graph.add_edge(START, "answer")
    graph.add_edge("answer", END)
    app = graph.compile()
    inputs = {"messages": [HumanMessage("Name three colours.")]}

    tokens = [
        m.content for m, _ in app.stream(inputs, stream_mode="messages") if isinstance(m, AIMessageChunk)
    ]
    final = app.invoke(inputs)["messages"][-1]
    assert len(tokens) > 1 and "".join(str(t) for t in tokens) == final.content
    assert final.content == bare_answer(lm, "Name three colours.")
    assert isinstance(final.usage_metadata, dict) and final.usage_metadata["output_tokens"] > 0
