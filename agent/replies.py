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
    # "llm": the LLM's sentence, passed by the claim checker; "template": the evidence template (explain =
    # "template", a Chinese reply, or no LLM); "fallback": the template, shown because the LLM's sentence was rejected
    explanation_source: Literal["llm", "template", "fallback"] = "template"
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
    """`agent.stream()` yields kind="text" events (deltas to append); after the text of each pick, one kind="item"
    event with that pick (`items` holds it alone, its explanation final), in reply order; and finally one
    kind="items" event carrying every item and the complete `Reply`."""

    kind: Literal["text", "item", "items"]
    text: str = ""
    items: list[ReplyItem] = Field(default_factory=list)
    reply: Reply | None = None
    language: Literal["", "en", "zh"] = ""  # "item" events: the reply's language (the card's labels follow it)
