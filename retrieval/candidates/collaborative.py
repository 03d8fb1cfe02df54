"""Collaborative candidates: "people who liked these also liked …".

- Liked items only (a new user said "I loved Alien"): item-kNN neighbours of the liked items.
- A known user (an id from the interaction log, or an explicit history): the configured model
  (`candidates.collaborative_model`, EASE by default) scored on history + likes.
Disliked items push their neighbours down. The rankers come from `retrieval.models` through the
`Recommender` registry, fitted on the interaction log (or on a training split for evaluation).
"""
from __future__ import annotations

import numpy as np

from retrieval.candidates.base import Candidate, CandidateGenerator, CandidateRequest
from retrieval.candidates.filtering import CatalogArrays, effective_constraints
from retrieval.candidates.threads import single_threaded_blas
from retrieval.catalog.schema import Catalog, Interactions
from retrieval.histories import UserHistories, ordered_union
from retrieval.recommender import Recommender, UserContext, create

DISLIKE_WEIGHT = 0.5  # how hard a dislike pushes its item-kNN neighbours down


class CollaborativeGenerator(CandidateGenerator):
    name = "collaborative"

    def __init__(self, arrays: CatalogArrays, model: str = "ease", neighbour_model: str = "itemknn"):
        self.arrays = arrays
        self.model_name = model
        self.neighbour_model_name = neighbour_model
        self.model: Recommender | None = None
        self.neighbours: Recommender | None = None
        self.histories: UserHistories | None = None  # the fitted log's users, for known-user requests

    def fit(self, train: Interactions, catalog: Catalog) -> "CollaborativeGenerator":
        self.neighbours = create(self.neighbour_model_name).fit(train, catalog)
        self.model = (self.neighbours if self.model_name == self.neighbour_model_name
                      else create(self.model_name).fit(train, catalog))
        self.histories = UserHistories(train)
        return self

    @property
    def fitted(self) -> bool:
        return self.model is not None

    def knows_user(self, user_id: str | None) -> bool:
        return self.histories is not None and self.histories.knows(user_id)

    def history_of(self, request: CandidateRequest) -> np.ndarray:
        """Catalog indices of a known user's logged history (oldest first), then the request's own history."""
        logged = self.histories.of(request.user_id) if self.histories is not None else ()
        return np.asarray(ordered_union(logged, self.arrays.indices(request.history)), dtype=np.int64)

    def scores(self, request: CandidateRequest) -> np.ndarray | None:
        """A score per catalog item, or None when the request has nothing collaborative to go on."""
        if not self.fitted:
            raise RuntimeError("CollaborativeGenerator.fit(interactions, catalog) must run first")
        liked = self.arrays.indices(request.liked)
        history = self.history_of(request)
        if history.size:
            # stated likes are the newest evidence: they follow the history (sequential models read the order)
            model, user = self.model, UserContext(history=ordered_union(history, liked), user_id=request.user_id)
        elif liked.size:
            model, user = self.neighbours, UserContext(history=tuple(int(i) for i in liked))
        else:
            return None
        disliked = self.arrays.indices(request.disliked)
        with single_threaded_blas():
            scores = model.score([user])[0].astype(np.float64)
            if disliked.size:
                dislikes = UserContext(history=tuple(int(i) for i in disliked))
                scores -= DISLIKE_WEIGHT * self.neighbours.score([dislikes])[0]
        return scores

    def generate(self, request: CandidateRequest, k: int) -> list[Candidate]:
        scores = self.scores(request)
        if scores is None:
            return []
        keep = self.arrays.facts.mask(effective_constraints(request)) & (scores > 0)  # no "neighbours" without evidence
        keep[self.history_of(request)] = False  # a known user's logged history is never recommended back
        return self.arrays.candidates(scores, keep, k, self.name)
