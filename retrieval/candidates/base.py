"""Shared types of candidate generation. Hard constraints (`retrieval.constraints`) are filters, never hopes."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from retrieval.catalog.schema import Catalog, Interactions, Item
from retrieval.constraints import Constraints


@dataclass(frozen=True)
class CandidateRequest:
    query: str = ""  # text for semantic search (the chat adds the wanted genres and moods to the user's words)
    constraints: Constraints = Constraints()
    liked: tuple[str, ...] = ()  # item ids the user likes (stated or feedback)
    disliked: tuple[str, ...] = ()
    history: tuple[str, ...] = ()  # the user's interaction history, oldest first (known users)
    user_id: str | None = None
    # The user's own content words within `query`, when the caller has separated them from what it understood
    # (the chat's planner: genres, years, counts, titles and chit-chat removed); None = all of `query`. The blend's
    # semantic signal scores only these, so "what should I watch next?" never ranks by the word "next".
    words: str | None = None
    mood_genres: frozenset[str] = frozenset()  # genres wished for softly (moods): a signal, never a filter

    @property
    def content(self) -> str:
        """The text the blend's semantic signal compares with item texts."""
        return (self.query if self.words is None else self.words).strip()


@dataclass(frozen=True)
class Candidate:
    item: Item
    score: float  # fused retriever score, higher is better
    sources: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))  # generator -> its score


class CandidateGenerator(ABC):
    name: str = "generator"

    @abstractmethod
    def generate(self, request: CandidateRequest, k: int) -> list[Candidate]:
        """Up to k candidates, best first, every one allowed by request.constraints."""

    def fit(self, train: Interactions, catalog: Catalog) -> "CandidateGenerator":
        """Learn from an interaction log (collaborative, popularity); content-only generators ignore it."""
        return self
