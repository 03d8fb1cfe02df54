"""EASE (Steck, 2019): a closed-form linear item-item model, strong on MovieLens."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retrieval.catalog.schema import Catalog, Interactions
from retrieval.recommender import Recommender, UserContext, history_matrix, register, take_candidates


@register("ease")
class EASE(Recommender):
    def __init__(self, l2: float = 250.0):
        self.l2 = l2

    def fit(self, train: Interactions, catalog: Catalog) -> "EASE":
        super().fit(train, catalog)
        x = train.to_csr(len(catalog))
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.l2
        p = np.linalg.inv(gram)
        b = p / (-np.diag(p))
        b[np.diag_indices_from(b)] = 0.0
        self.weights = b.astype(np.float32)
        return self

    def score(self, users: Sequence[UserContext], candidates: np.ndarray | None = None) -> np.ndarray:
        return take_candidates(history_matrix(users, self.n_items) @ self.weights, candidates)
