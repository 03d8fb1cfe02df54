"""What a benchmark request asks for, as facts about items: the ORACLE filter and constraint satisfaction.

A request written from the target's attributes ("80s sci-fi") is recorded with those attributes. The
same predicate decides (a) which items an oracle baseline may pick (a perfect parser on top of that
model) and (b) which of a system's picks satisfy the request. By construction the target satisfies it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retrieval.catalog.schema import Catalog, Item
from retrieval.constraints import Constraints, FactsTable


@dataclass(frozen=True)
class RequestAttributes:
    """An item satisfies the request when it has at least one of `genres` (none given: any item), its
    year is within [year_min, year_max] (when given), and it is not the `anchor` ("I loved X": X)."""

    genres: frozenset[str] = frozenset()
    year_min: int | None = None
    year_max: int | None = None
    anchor: str | None = None  # item id of the film the request names as loved

    @property
    def constrained(self) -> bool:
        """False for a request that asks for nothing in particular (every item satisfies it)."""
        return bool(self.genres) or self.year_min is not None or self.year_max is not None or self.anchor is not None

    @property
    def constraints(self) -> Constraints:
        """The same attributes as hard constraints: one rule for the oracle, the chat and satisfaction."""
        return Constraints(include_genres=self.genres, year_min=self.year_min, year_max=self.year_max,
                           exclude_ids=frozenset({self.anchor} if self.anchor else ()))

    def allows(self, item: Item) -> bool:
        return self.constraints.allows(item)

    def mask(self, catalog: Catalog) -> np.ndarray:
        """Boolean vector over the catalog's items: True where `allows(item)`."""
        return FactsTable.from_catalog(catalog).mask(self.constraints)

    def to_json(self) -> dict:
        return {"genres": sorted(self.genres), "year_min": self.year_min, "year_max": self.year_max,
                "anchor": self.anchor}


def satisfaction(picks: list[int], attributes: RequestAttributes, catalog: Catalog) -> float:
    """Share of the picks (catalog indices) that have the request's attributes; NaN without picks."""
    if not picks:
        return float("nan")
    return sum(attributes.allows(catalog.at(i)) for i in picks) / len(picks)
