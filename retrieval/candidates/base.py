"""Shared types of candidate generation. Hard constraints are filters, never hopes."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from retrieval.catalog.schema import Catalog, Interactions, Item


@dataclass(frozen=True)
class Constraints:
    """Hard constraints every output list obeys."""

    include_genres: frozenset[str] = frozenset()  # item has at least one of these (or all, see genre_mode)
    exclude_genres: frozenset[str] = frozenset()  # item has none of these
    genre_mode: str = "any"  # "any" | "all"
    year_min: int | None = None
    year_max: int | None = None
    exclude_ids: frozenset[str] = frozenset()  # seen, disliked, already shown …

    def allows(self, item: Item) -> bool:
        genres = set(item.genres)
        if item.item_id in self.exclude_ids or genres & self.exclude_genres:
            return False
        if self.include_genres:
            ok = self.include_genres <= genres if self.genre_mode == "all" else bool(self.include_genres & genres)
            if not ok:
                return False
        if self.year_min is not None or self.year_max is not None:
            if item.year is None:
                return False
            if self.year_min is not None and item.year < self.year_min:
                return False
            if self.year_max is not None and item.year > self.year_max:
                return False
        return True


@dataclass(frozen=True)
class CandidateRequest:
    query: str = ""
    constraints: Constraints = Constraints()
    liked: tuple[str, ...] = ()  # item ids the user likes (stated or feedback)
    disliked: tuple[str, ...] = ()
    history: tuple[str, ...] = ()  # the user's interaction history, oldest first (known users)
    user_id: str | None = None


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
