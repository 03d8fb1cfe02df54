"""Public result types of the agent API (docs/ARCHITECTURE.md §3): `Reply`, `ReplyItem`, `StreamEvent`."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from retrieval.evidence import Evidence


class ReplyItem(BaseModel):
    item_id: str
    title: str
    title_zh: str = ""  # the title's common Chinese name, where the alias table knows one
    year: int | None = None
    genres: list[str] = Field(default_factory=list)
    description: str = ""
    explanation: str = ""
    explanation_source: Literal["llm", "template"] = "template"
    score: float = 0.0
    evidence: Evidence | None = None  # why it was picked, as data (retrieval/evidence.py); None for tool-mode items

    @property
    def label(self) -> str:
        return f"{self.title} ({self.year})" if self.year else self.title


class Reply(BaseModel):
    text: str
    items: list[ReplyItem] = Field(default_factory=list)
    understood: str = ""  # "what I understood" from this message ("" when nothing)
    session_id: str = ""
    notes: list[str] = Field(default_factory=list)  # warnings shown in the text too (unknown titles, …)
    state: dict = Field(default_factory=dict)  # the session's accumulated preferences after this turn
    search_query: str = ""  # the text semantic search used (the LLM's expansion when query expansion is on)
    language: Literal["en", "zh"] = "en"  # the language of the user's message
    error: str = ""  # set when the turn failed (the text then apologises; the session is unchanged): what failed


class StreamEvent(BaseModel):
    """`agent.stream()` yields kind="text" events (deltas to append) and finally one kind="items" event
    carrying the items and the complete `Reply`."""

    kind: Literal["text", "items"]
    text: str = ""
    items: list[ReplyItem] = Field(default_factory=list)
    reply: Reply | None = None
