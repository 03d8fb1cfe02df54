"""LangChain layer: the turn chain's streaming, the four tools, and the create_agent tool-calling loop
driven by a scripted chat model that emits real tool calls (the real agent loop and tools run)."""
from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import ValidationError

from agent.pipeline import Turn
from agent.session import SessionState
from agent.tools import ToolCallingChat, make_tools


def test_turn_chain_streams_text_then_items(agent):
    chain = agent.chain
    assert [s.name for s in chain.bound.steps] == ["understand", "retrieve", "rerank", "explain"]
    turn = Turn(message="two westerns from the 60s", state=SessionState(session_id="chain"))
    chunks = list(chain.stream(turn))
    assert all("text" in c for c in chunks[:-1]) and "items" in chunks[-1]
    items = chunks[-1]["items"]
    assert len(items) == 2 and all("Western" in i.genres and 1960 <= i.year <= 1969 for i in items)
    assert "".join(c["text"] for c in chunks[:-1]) == chunks[-1]["turn"].reply_text


def test_turn_chain_invoke_collects_the_whole_reply(agent):
    out = agent.chain.invoke(Turn(message="3 documentaries", state=SessionState(session_id="chain2")))
    assert len(out["items"]) == 3 and out["text"].startswith("Here are 3 documentary picks")


@pytest.fixture(scope="module")
def tools(agent):
    return {t.name: t for t in make_tools(agent)}


def test_tools_have_pydantic_schemas(tools):
    assert set(tools) == {"search_catalog", "get_item", "recommend", "record_feedback"}
    schema = tools["search_catalog"].args_schema.model_json_schema()
    assert {"query", "genres", "exclude_genres", "year_min", "year_max", "k"} <= set(schema["properties"])
    with pytest.raises(ValidationError):
        tools["search_catalog"].invoke({"query": "space", "k": 500})
    with pytest.raises(ValidationError):
        tools["record_feedback"].args_schema.model_validate({"item_id": "1", "kind": "love"})


def test_search_and_get_item_return_catalog_facts(agent, tools):
    found = json.loads(tools["search_catalog"].invoke({"query": "space adventure", "genres": ["sci-fi"],
                                                       "year_max": 1980, "k": 4}))
    assert len(found) == 4
    for row in found:
        item = agent.catalog[row["item_id"]]
        assert row["title"] == item.title and "Sci-Fi" in item.genres and item.year <= 1980
    assert json.loads(tools["get_item"].invoke({"item_id": found[0]["item_id"]}))["year"] == found[0]["year"]
    assert tools["get_item"].invoke({"item_id": "nope"}).startswith("error: no item")
    assert "valid genres" in tools["search_catalog"].invoke({"query": "x", "genres": ["Cyberpunk"]})


class ScriptedToolModel(BaseChatModel):
    """A stand-in for a tool-calling LLM: on a user message it calls the tools its script names; after the
    tool results it answers with the titles the tools returned (so the test sees the real tools' output)."""

    script: dict[str, list[dict]]
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "scripted-tools"

    def bind_tools(self, tools, **kwargs: Any):
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        self.calls += 1
        last = messages[-1]
        if isinstance(last, HumanMessage):
            planned = self.script.get(last.text, [])
            calls = [{"name": c["name"], "args": c["args"], "id": f"call_{self.calls}_{n}"}
                     for n, c in enumerate(planned)]
            message = AIMessage(content="" if calls else "How can I help?", tool_calls=calls)
        else:
            titles = []
            for m in messages:
                if isinstance(m, ToolMessage) and m.content.startswith("{") and '"items"' in m.content:
                    titles = [i["title"] for i in json.loads(m.content)["items"]]
            message = AIMessage(content="My picks: " + "; ".join(titles) if titles else "Noted.")
        return ChatResult(generations=[ChatGeneration(message=message)])


def test_tool_calling_mode_runs_the_real_agent_loop(agent_settings, agent):
    from agent.core import RecommenderAgent

    model = ScriptedToolModel(script={
        "Older sci-fi please, no war films": [{"name": "recommend", "args": {"message": "sci-fi before 1975, no war"}}],
        "I've seen the first one": [{"name": "recommend", "args": {"message": "I've seen the first one"}}],
    })
    tool_agent = RecommenderAgent(agent_settings, service=agent.service)
    tool_agent.use_chat_model(model, checkpointer=InMemorySaver())
    sid = f"tools-{uuid.uuid4().hex[:8]}"
    reply = tool_agent.chat("Older sci-fi please, no war films", session_id=sid)
    assert len(reply.items) == 5
    assert all("Sci-Fi" in i.genres and "War" not in i.genres and i.year <= 1974 for i in reply.items)
    assert reply.text.startswith("My picks: ") and reply.items[0].title in reply.text
    first = reply.items[0]

    events = list(tool_agent.stream("I've seen the first one", session_id=sid))
    assert [e.kind for e in events] == ["text", "items"]
    again = events[-1].reply
    assert first.item_id not in {i.item_id for i in again.items}
    assert tool_agent.get_state(sid)["seen"][0]["item_id"] == first.item_id
    # the checkpointer kept the thread: the second turn saw the first turn's messages
    state = tool_agent.tool_mode.graph.get_state({"configurable": {"thread_id": sid}})
    humans = [m.text for m in state.values["messages"] if isinstance(m, HumanMessage)]
    assert humans == ["Older sci-fi please, no war films", "I've seen the first one"]


def test_tool_mode_feedback_tool_uses_the_run_session(agent_settings, agent):
    from agent.core import RecommenderAgent

    item_id = agent.catalog.item_ids[0]
    model = ScriptedToolModel(script={"I hated it": [{"name": "record_feedback",
                                                      "args": {"item_id": item_id, "kind": "dislike"}}]})
    tool_agent = RecommenderAgent(agent_settings, service=agent.service)
    tool_agent.use_chat_model(model, checkpointer=InMemorySaver())
    sid, other = f"fb-{uuid.uuid4().hex[:8]}", f"fb-{uuid.uuid4().hex[:8]}"
    reply = tool_agent.chat("I hated it", session_id=sid)
    assert reply.items == [] and reply.text == "Noted."
    assert [d["item_id"] for d in tool_agent.get_state(sid)["disliked"]] == [item_id]
    assert tool_agent.get_state(other)["disliked"] == []


def test_tool_mode_without_a_model_says_what_to_configure(agent_settings, agent):
    from agent.core import RecommenderAgent

    settings = agent_settings.model_copy(update={"agent": agent_settings.agent.model_copy(update={"mode": "tools"})})
    with pytest.raises(ValueError, match="agent.chat_model"):
        RecommenderAgent(settings, service=agent.service)
    bad = agent_settings.model_copy(update={"agent": agent_settings.agent.model_copy(update={"mode": "magic"})})
    with pytest.raises(ValueError, match="'planner' or 'tools'"):
        RecommenderAgent(bad, service=agent.service)


def test_tool_calling_chat_is_usable_directly(agent):
    model = ScriptedToolModel(script={"hi": []})
    chat = ToolCallingChat(agent, model, checkpointer=InMemorySaver())
    reply = chat.chat("hi", session_id=f"direct-{uuid.uuid4().hex[:6]}")
    assert reply.text == "How can I help?" and reply.items == []


def test_tool_mode_conversation_continues_after_a_restart(agent_settings, agent, tmp_path):
    """The default checkpointer is SQLite in MARQUEE_HOME: a new agent (a restarted process) picks the thread
    up where the old one left it, with the earlier turns' messages and the session's feedback."""
    from agent.core import RecommenderAgent
    from agent.tools import CHECKPOINT_DB

    settings = agent_settings.model_copy(update={"home": tmp_path})
    script = {"Older sci-fi please": [{"name": "recommend", "args": {"message": "sci-fi before 1975"}}],
              "I've seen the first one": [{"name": "recommend", "args": {"message": "I've seen the first one"}}]}
    sid = f"restart-{uuid.uuid4().hex[:8]}"
    before = RecommenderAgent(settings, service=agent.service)
    before.use_chat_model(ScriptedToolModel(script=script))
    first = before.chat("Older sci-fi please", session_id=sid).items[0]
    assert (tmp_path / CHECKPOINT_DB).is_file()
    del before

    after = RecommenderAgent(settings, service=agent.service)
    after.use_chat_model(ScriptedToolModel(script=script))
    again = after.chat("I've seen the first one", session_id=sid)
    assert first.item_id not in {i.item_id for i in again.items}
    state = after.tool_mode.graph.get_state({"configurable": {"thread_id": sid}})
    humans = [m.text for m in state.values["messages"] if isinstance(m, HumanMessage)]
    assert humans == ["Older sci-fi please", "I've seen the first one"]
