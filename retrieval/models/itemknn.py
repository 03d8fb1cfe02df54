"""Item-kNN: cosine similarity between item interaction vectors, top-k neighbours kept per item."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retrieval.catalog.schema import Catalog, Interactions
from retrieval.recommender import Recommender, UserContext, history_matrix, register, take_candidates


@register("itemknn")
class ItemKNN(Recommender):
    def __init__(self, neighbours: int = 100, shrink: float = 10.0):
        self.neighbours = neighbours
        self.shrink = shrink

    def fit(self, train: Interactions, catalog: Catalog) -> "ItemKNN":
        super().fit(train, catalog)
        x = train.to_csr(len(catalog))
        co = (x.T @ x).toarray().astype(np.float32)
        norms = np.sqrt(np.diag(co))
        sim = co / (np.outer(norms, norms) + self.shrink + 1e-9)
        np.fill_diagonal(sim, 0.0)
        if self.neighbours < sim.shape[0]:
            # keep each item's k most similar items (row-wise), zero the rest
            cut = np.argpartition(-sim, self.neighbours, axis=1)[:, self.neighbours:]
            np.put_along_axis(sim, cut, 0.0, axis=1)
        self.similarity = sim
        return self

    def similar(self, item: int, k: int) -> list[tuple[int, float]]:
        row = self.similarity[item]
        top = np.argsort(-row, kind="stable")[:k]
        return [(int(i), float(row[i])) for i in top if row[i] > 0]

    def score(self, users: Sequence[UserContext], candidates: np.ndarray | None = None) -> np.ndarray:
        # s(u, j) = sum over history items i of sim(i, j)
        return take_candidates(history_matrix(users, self.n_items) @ self.similarity, candidates)
