"""Next-id leak canary (docs/ARCHITECTURE.md §6): an evaluation-only ranker, never shipped.

It scores items by how closely their id follows the id of the user's last history item. That guess
only works when equal timestamps were ordered by item id (a leak); on an honest split it must stay below
MostPop, and the harness checks that on every full run.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retrieval.catalog.schema import Catalog, Interactions
from retrieval.recommender import Recommender, UserContext, take_candidates


class NextIdCanary(Recommender):
    name = "next-id-canary"

    def fit(self, train: Interactions, catalog: Catalog) -> "NextIdCanary":
        super().fit(train, catalog)
        ids = catalog.item_ids
        # numeric ids when every id is an integer (MovieLens), else the catalog order
        self.ids = (np.array([int(i) for i in ids], dtype=np.float64) if all(i.isdigit() for i in ids)
                    else np.arange(len(ids), dtype=np.float64))
        return self

    def score(self, users: Sequence[UserContext], candidates: np.ndarray | None = None) -> np.ndarray:
        span = self.ids.max() - self.ids.min() + 1
        out = np.zeros((len(users), self.n_items), dtype=np.float64)
        for row, user in enumerate(users):
            if not user.history:
                continue
            gap = self.ids - self.ids[user.history[-1]]
            # ids just above the last one first (closest first), then the ones below (closest first)
            out[row] = np.where(gap > 0, -gap, -span + gap)
        return take_candidates(out, candidates)
