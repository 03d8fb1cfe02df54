"""LangChain tools over a `RecommenderAgent`, and the tool-calling mode for capable chat models.

Tools: `search_catalog`, `get_item`, `recommend`, `record_feedback` (StructuredTools with pydantic
argument schemas). Every fact a tool returns comes from the catalog, and `recommend` runs the
deterministic planner, so a chat model can phrase the conversation but cannot invent items or break
the user's constraints. The session is the LangGraph run's context (`ToolContext`), never a tool argument
the model could change, so one conversation cannot reach another's state.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from langchain.tools import ToolRuntime
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import StructuredTool
from pydantic import BaseModel, Field

import prompts
from agent.replies import Reply
from retrieval.candidates.base import CandidateRequest
from retrieval.constraints import Constraints


@dataclass
class ToolContext:
    session_id: str
    user_id: str | None = None


class SearchArgs(BaseModel):
    query: str = Field(description="what to look for, in plain words (themes, mood, similar titles)")
    genres: list[str] = Field(default_factory=list, description="catalog genres; items need at least one")
    exclude_genres: list[str] = Field(default_factory=list, description="catalog genres to leave out")
    year_min: int | None = Field(None, description="earliest release year")
    year_max: int | None = Field(None, description="latest release year")
    k: int = Field(5, ge=1, le=20, description="how many items")


class ItemArgs(BaseModel):
    item_id: str = Field(description="a catalog item id from an earlier tool result")


class RecommendArgs(BaseModel):
    message: str = Field(description="the user's request in their own words, e.g. 'older sci-fi, no war films'")


class FeedbackArgs(BaseModel):
    item_id: str = Field(description="a catalog item id from an earlier recommendation")
    kind: Literal["like", "dislike", "seen"] = Field(description="the user's opinion of that item")


def _facts(item) -> dict:
    return {"item_id": item.item_id, "title": item.title, "year": item.year, "genres": list(item.genres),
            "description": item.description[:300]}


def make_tools(agent, on_recommend=None) -> list[StructuredTool]:
    """The four tools, bound to one RecommenderAgent (sessions come from the run's ToolContext);
    `on_recommend(session_id, reply)` sees every `recommend` result."""
    service = agent.service

    def search_catalog(query: str, genres: list[str] | None = None, exclude_genres: list[str] | None = None,
                       year_min: int | None = None, year_max: int | None = None, k: int = 5) -> str:
        try:
            constraints = Constraints(include_genres=service.resolve_genres(genres or []),
                                      exclude_genres=service.resolve_genres(exclude_genres or []),
                                      year_min=year_min, year_max=year_max)
            found = service.candidates(CandidateRequest(query=query, constraints=constraints), k)
        except ValueError as exc:  # unknown genre, empty year range: tell the model how to fix it
            return f"error: {exc}"
        return json.dumps([_facts(c.item) for c in found], ensure_ascii=False)

    def get_item(item_id: str) -> str:
        item = agent.catalog.get(str(item_id))
        if item is None:
            return f"error: no item with id {item_id!r}; use ids from search_catalog or recommend results"
        return json.dumps(_facts(item), ensure_ascii=False)

    def recommend(message: str, runtime: ToolRuntime[ToolContext]) -> str:
        ctx = runtime.context
        reply = agent.planner_chat(message, session_id=ctx.session_id, user_id=ctx.user_id)
        if on_recommend is not None:
            on_recommend(ctx.session_id, reply)
        return json.dumps({"reply": reply.text, "understood": reply.understood,
                           "items": [{"item_id": i.item_id, "title": i.title, "year": i.year, "genres": i.genres,
                                      "explanation": i.explanation} for i in reply.items]}, ensure_ascii=False)

    def record_feedback(item_id: str, kind: str, runtime: ToolRuntime[ToolContext]) -> str:
        try:
            state = agent.feedback(runtime.context.session_id, item_id, liked=None if kind == "seen" else kind == "like",
                                   seen=kind == "seen")
        except ValueError as exc:
            return f"error: {exc}"
        return json.dumps({"recorded": kind, "item_id": item_id, "liked": state["liked"],
                           "disliked": state["disliked"], "seen": state["seen"]}, ensure_ascii=False)

    return [
        StructuredTool.from_function(search_catalog, name="search_catalog", args_schema=SearchArgs,
                                     description="Search the movie catalog with optional genre / year filters. "
                                                 "Returns real catalog items (id, title, year, genres)."),
        StructuredTool.from_function(get_item, name="get_item", args_schema=ItemArgs,
                                     description="Catalog facts of one item by id."),
        StructuredTool.from_function(recommend, name="recommend", args_schema=RecommendArgs,
                                     description="Personalised picks for this conversation: remembers earlier "
                                                 "wishes, exclusions and feedback. Pass the user's request."),
        StructuredTool.from_function(record_feedback, name="record_feedback", args_schema=FeedbackArgs,
                                     description="Record that the user liked, disliked or has seen an item."),
    ]


def chat_model_from_config(cfg):
    """The configured tool-calling chat model (any `init_chat_model` spec, e.g. an OpenAI-compatible server)."""
    from langchain.chat_models import init_chat_model

    if not cfg.chat_model:
        raise ValueError("agent.mode = 'tools' needs agent.chat_model (e.g. 'openai:gpt-4o-mini', with "
                         "agent.chat_base_url for an OpenAI-compatible server such as vLLM)")
    kwargs = {}
    if cfg.chat_base_url:
        kwargs["base_url"] = cfg.chat_base_url
    if os.environ.get(cfg.chat_api_key_env):
        kwargs["api_key"] = os.environ[cfg.chat_api_key_env]
    try:
        return init_chat_model(cfg.chat_model, **kwargs)
    except ImportError as exc:  # the provider's integration package (e.g. langchain-openai) is not installed
        raise RuntimeError(f"{TOOLS_EXTRA_HINT} ({exc})") from None


TOOLS_EXTRA_HINT = ("agent.mode = 'tools' needs the tools extra (langchain-openai, langgraph-checkpoint-sqlite). "
                    "Fix: pip install -c constraints.txt 'marquee[tools]'   (in a checkout: make setup)")
CHECKPOINT_DB = "langgraph.db"  # tool mode's conversation threads, beside marquee.db in MARQUEE_HOME


def checkpointer_for(home: Path):
    """LangGraph's SQLite checkpointer at `<home>/langgraph.db`: a tool-mode conversation (its messages and
    tool calls, keyed by session id) continues after a restart, like the planner's sessions in marquee.db."""
    import sqlite3

    try:
        from langgraph.checkpoint.sqlite import SqliteSaver
    except ImportError:
        raise RuntimeError(TOOLS_EXTRA_HINT) from None
    from retrieval.integrity import sqlite_problem

    path = Path(home) / CHECKPOINT_DB
    problem = sqlite_problem(path)
    if problem:  # a damaged file is reported, never silently replaced
        raise RuntimeError(f"tool mode's conversation store {path} is damaged ({problem}). Fix: marquee doctor "
                           "--repair   (moves it to <home>/quarantine/; tool-mode conversations start afresh)")
    Path(home).mkdir(parents=True, exist_ok=True)
    return SqliteSaver(sqlite3.connect(str(path), check_same_thread=False))


class ToolCallingChat:
    """`create_agent` loop: the chat model talks and calls the tools; the reply's items are those of the
    latest `recommend` call in the turn (catalog rows from the deterministic planner)."""

    def __init__(self, agent, model, checkpointer=None):
        from langchain.agents import create_agent

        self.agent = agent
        self._picked: dict[str, Reply] = {}  # session -> latest `recommend` reply of the running turn
        self.tools = make_tools(agent, on_recommend=self._picked.__setitem__)
        self.graph = create_agent(model, tools=self.tools, system_prompt=prompts.load("agent_system").text,
                                  context_schema=ToolContext,
                                  checkpointer=checkpointer or checkpointer_for(agent.settings.data_dir))

    def chat(self, message: str, session_id: str, user_id: str | None = None) -> Reply:
        from agent.understanding import clean_message
        from agent.validation import ChatRequest

        request = self.agent.validate(ChatRequest, {"message": message, "session_id": session_id, "user_id": user_id})
        sid = request.session_id
        text, _ = clean_message(request.message)
        self._picked.pop(sid, None)
        result = self.graph.invoke({"messages": [HumanMessage(text or "hello")]},
                                   config={"configurable": {"thread_id": sid}},
                                   context=ToolContext(session_id=sid, user_id=user_id))
        final = next((m for m in reversed(result["messages"]) if isinstance(m, AIMessage)), None)
        answer = final.text if final is not None else ""
        picked = self._picked.pop(sid, None)
        if picked is None:
            return Reply(text=answer, session_id=sid, state=self.agent.get_state(sid))
        return picked.model_copy(update={"text": answer or picked.text})
