"""Hard constraints as vectorised masks over the catalog, and the list operations every generator
shares (top-k of a score vector under a mask).

`Constraints.allows(item)` is the per-item truth; `CatalogArrays.mask(constraints)` computes the same
thing for all items at once (≈0.1 ms instead of ≈2 ms for 1.7k items), which the collaborative and
popularity generators need because they score the whole catalog.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from retrieval.candidates.base import Candidate, CandidateRequest, Constraints
from retrieval.catalog.schema import Catalog


class CatalogArrays:
    """Column arrays of a catalog: genre matrix, years, popularity, id ↔ index."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.genre_names = catalog.genres()
        self.genre_column = {g: j for j, g in enumerate(self.genre_names)}
        self.genres = np.zeros((len(catalog), len(self.genre_names)), dtype=bool)
        for i, item in enumerate(catalog):
            for g in item.genres:
                self.genres[i, self.genre_column[g]] = True
        self.years = np.array([it.year if it.year is not None else -1 for it in catalog], dtype=np.int64)
        self.popularity = np.array([it.popularity for it in catalog], dtype=np.float64)

    def __len__(self) -> int:
        return len(self.catalog)

    def indices(self, item_ids) -> np.ndarray:
        index = self.catalog.index_of
        return np.fromiter((index(i) for i in item_ids if i in self.catalog), dtype=np.int64)

    def mask(self, constraints: Constraints) -> np.ndarray:
        """Boolean vector: True where `constraints.allows(item)` would be True."""
        keep = np.ones(len(self.catalog), dtype=bool)
        if constraints.exclude_genres:
            cols = [self.genre_column[g] for g in constraints.exclude_genres if g in self.genre_column]
            if cols:
                keep &= ~self.genres[:, cols].any(axis=1)
        if constraints.include_genres:
            cols = [self.genre_column[g] for g in constraints.include_genres if g in self.genre_column]
            if constraints.genre_mode == "all":
                # an unknown required genre can never be satisfied
                keep &= self.genres[:, cols].all(axis=1) if len(cols) == len(constraints.include_genres) else False
            else:
                keep &= self.genres[:, cols].any(axis=1) if cols else False
        if constraints.year_min is not None or constraints.year_max is not None:
            keep &= self.years >= 0
            if constraints.year_min is not None:
                keep &= self.years >= constraints.year_min
            if constraints.year_max is not None:
                keep &= self.years <= constraints.year_max
        if constraints.exclude_ids:
            keep[self.indices(constraints.exclude_ids)] = False
        return keep

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
