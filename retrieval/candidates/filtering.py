"""The catalog as column arrays for generators that score every item, and the list operations they share
(top-k of a score vector under a constraint mask, `retrieval.constraints.FactsTable.mask`).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from retrieval.candidates.base import Candidate, CandidateRequest
from retrieval.catalog.schema import Catalog
from retrieval.constraints import Constraints, FactsTable


class CatalogArrays:
    """Column arrays of a catalog: filterable facts (`facts.mask(constraints)`), popularity, id ↔ index."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.facts = FactsTable.from_catalog(catalog)  # row i = catalog index i
        self.popularity = np.array([it.popularity for it in catalog], dtype=np.float64)

    def __len__(self) -> int:
        return len(self.catalog)

    def indices(self, item_ids) -> np.ndarray:
        index = self.catalog.index_of
        return np.fromiter((index(i) for i in item_ids if i in self.catalog), dtype=np.int64)

    def top(self, scores: np.ndarray, keep: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The k best allowed (index, score); ties go to the lower catalog index; -inf/nan never."""
        valid = keep & np.isfinite(scores)
        idx = np.flatnonzero(valid)
        if k <= 0 or idx.size == 0:
            return []
        vals = scores[idx]
        if idx.size > k:  # partial sort first: the catalog may be large
            part = np.argpartition(-vals, k - 1)[:k]
            cutoff = vals[part].min()
            sel = vals >= cutoff
            idx, vals = idx[sel], vals[sel]
        order = np.lexsort((idx, -vals))[:k]
        return [(int(idx[o]), float(vals[o])) for o in order]

    def candidates(self, scores: np.ndarray, keep: np.ndarray, k: int, source: str) -> list[Candidate]:
        return [Candidate(item=self.catalog.at(i), score=s, sources={source: s}) for i, s in self.top(scores, keep, k)]


def effective_constraints(request: CandidateRequest) -> Constraints:
    """The request's constraints plus the items the user already knows: liked, disliked and history
    items are never recommended back (docs/ARCHITECTURE.md §7)."""
    known = frozenset(request.liked) | frozenset(request.disliked) | frozenset(request.history)
    if not known - request.constraints.exclude_ids:
        return request.constraints
    return replace(request.constraints, exclude_ids=request.constraints.exclude_ids | known)
