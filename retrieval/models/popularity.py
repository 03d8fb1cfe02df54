"""Popularity prior (cold start) and the Random floor."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retrieval.catalog.schema import Catalog, Interactions
from retrieval.recommender import Recommender, UserContext, register, take_candidates


@register("mostpop")
class MostPop(Recommender):
    def fit(self, train: Interactions, catalog: Catalog) -> "MostPop":
        super().fit(train, catalog)
        self.counts = np.bincount(train.items, minlength=len(catalog)).astype(np.float32)
        return self

    def score(self, users: Sequence[UserContext], candidates: np.ndarray | None = None) -> np.ndarray:
        return take_candidates(np.tile(self.counts, (len(users), 1)), candidates)


@register("random")
class RandomRanker(Recommender):
    def __init__(self, seed: int = 0):
        self.seed = seed

    def score(self, users: Sequence[UserContext], candidates: np.ndarray | None = None) -> np.ndarray:
        rng = np.random.default_rng(self.seed + sum(len(u.history) for u in users))
        return take_candidates(rng.random((len(users), self.n_items), dtype=np.float32), candidates)
