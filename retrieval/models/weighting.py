"""History weighting shared by the item-item models (ItemKNN, EASE)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retrieval.recommender import UserContext, history_matrix


def weighted_history_matrix(users: Sequence[UserContext], n_items: int, recency_halflife: float | None) -> np.ndarray:
    """(n_users, n_items) history matrix; with a half-life (in items), the item consumed `age` steps before
    the most recent one weighs 0.5 ** (age / half-life): recent tastes count more (leave-one-out targets
    follow the latest items). None / 0 gives the classic binary matrix."""
    if not recency_halflife:
        return history_matrix(users, n_items)
    x = np.zeros((len(users), n_items), dtype=np.float32)
    for row, u in enumerate(users):
        if u.history:
            ages = np.arange(len(u.history) - 1, -1, -1, dtype=np.float64)
            # np.maximum: an item seen twice keeps its most recent (largest) weight
            np.maximum.at(x[row], np.asarray(u.history), (0.5 ** (ages / recency_halflife)).astype(np.float32))
    return x
