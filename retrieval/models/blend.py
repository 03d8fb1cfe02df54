"""Weighted blend of fitted rankers' per-user standardised scores (e.g. SASRec + EASE).

Sequential and item-item models see different things (order vs co-occurrence); on ML-100k their blend beats
either one, so it is a classical baseline any LLM reranker has to beat, and a stronger candidate generator.
Scores are z-scored per user over all items before weighting, so members on different scales mix evenly.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retrieval.catalog.schema import Catalog, Interactions
from retrieval.recommender import Recommender, UserContext, register, take_candidates


@register("blend")
class ScoreBlend(Recommender):
    def __init__(self, members: Sequence[tuple[Recommender, float]]):
        if not members or any(w < 0 for _, w in members) or not any(w > 0 for _, w in members):
            raise ValueError("a blend needs members with non-negative weights, at least one positive")
        self.members = list(members)

    def fit(self, train: Interactions, catalog: Catalog) -> "ScoreBlend":
        """Fits members that are not fitted yet (a fitted model has `n_items`)."""
        super().fit(train, catalog)
        for model, _ in self.members:
            if not hasattr(model, "n_items"):
                model.fit(train, catalog)
        return self

    def score(self, users: Sequence[UserContext], candidates: np.ndarray | None = None) -> np.ndarray:
        total = np.zeros((len(users), self.n_items), dtype=np.float64)
        for model, weight in self.members:
            if weight == 0:
                continue
            s = np.asarray(model.score(users), dtype=np.float64)
            spread = s.std(axis=1, keepdims=True)
            total += weight * (s - s.mean(axis=1, keepdims=True)) / np.where(spread > 0, spread, 1.0)
        return take_candidates(total, candidates)
