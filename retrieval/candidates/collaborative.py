"""Collaborative candidates: "people who liked these also liked …".

- A known user (an id from the interaction log, or an explicit history): the configured model
  (`candidates.collaborative_model`: `marquee eval`'s best ranker, SASRec + EASE) scored on the history, oldest
  first, with the session's likes appended as the newest evidence.
- Liked items only (a new user said "I loved Alien", or "more like Alien"): `candidates.anchor_model` (the same
  model unless configured) scored on the liked items alone.
Disliked items push their item-kNN neighbours down. The rankers come from `retrieval.models` through the
`Recommender` registry with their tuned constructor defaults (`retrieval.recommender.build`, as `marquee eval`),
fitted on the interaction log (or on a training split for evaluation). A sequential model is trained once per
log and cached in MARQUEE_HOME (`retrieval/models/sasrec.py`); the default catalog's comes pre-trained.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from retrieval.candidates.base import Candidate, CandidateGenerator, CandidateRequest
from retrieval.candidates.filtering import CatalogArrays, effective_constraints
from retrieval.candidates.threads import single_threaded_blas, single_threaded_torch
from retrieval.catalog.schema import Catalog, Interactions
from retrieval.histories import UserHistories, ordered_union
from retrieval.recommender import Recommender, UserContext, build

log = logging.getLogger(__name__)

DISLIKE_WEIGHT = 0.5  # how hard a dislike pushes its item-kNN neighbours down (see `dislike_penalty`)
FALLBACK_MODEL = "ease"  # when the log is too small for a sequential model (fewer than 3 items per user)


def dislike_penalty(scores: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """What to subtract from a model's `scores` for the disliked items' item-kNN `neighbours` scores: the closest
    neighbour loses DISLIKE_WEIGHT × (best score − median score), the others in proportion to their similarity.
    On the model's own scale, so it means the same for EASE (scores near 0…1) and a z-scored blend."""
    top = float(neighbours.max()) if neighbours.size else 0.0
    if top <= 0:
        return np.zeros_like(scores)
    return DISLIKE_WEIGHT * float(scores.max() - np.median(scores)) * np.clip(neighbours, 0.0, None) / top


class TrainingProgress:
    """What a first use shows while a sequential model trains on a new log (minutes on a laptop CPU; later uses load
    the cached weights): a progress line on stderr in a terminal (tqdm) and a log line."""

    def __init__(self, catalog_name: str):
        self.catalog_name = catalog_name
        self.bar = None

    def __call__(self, model_name: str, point: dict) -> None:
        if self.bar is None:
            from tqdm.auto import tqdm

            log.info("training %s on the %s interaction log (first use; the weights are cached in MARQUEE_HOME)",
                     model_name, self.catalog_name)
            self.bar = tqdm(desc=f"training {model_name} for {self.catalog_name} (first use only)", unit="epoch",
                            disable=None)  # None: shown in a terminal only
        self.bar.set_postfix_str(f"validation NDCG@10 {point['val_ndcg@10']:.4f}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        """End the line (called when the generator's fit ends)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class CollaborativeGenerator(CandidateGenerator):
    name = "collaborative"

    def __init__(self, arrays: CatalogArrays, model: str = "sasrec+ease", neighbour_model: str = "itemknn",
                 anchor_model: str | None = None, home: str | Path | None = None, seed: int = 0,
                 progress: Callable[[str, dict], None] | None = None):
        """`progress(model_name, point)`: called per training epoch of a sequential model (first use only); its
        `close()`, when it has one, when fitting ends."""
        self.arrays = arrays
        self.model_name = model
        self.neighbour_model_name = neighbour_model
        self.anchor_model_name = anchor_model or model
        self.home = home
        self.seed = seed
        self.progress = progress
        self.model: Recommender | None = None
        self.neighbours: Recommender | None = None
        self.anchor_model: Recommender | None = None
        self.histories: UserHistories | None = None  # the fitted log's users, for known-user requests

    def _fitted(self, name: str, train: Interactions, catalog: Catalog) -> Recommender:
        model = build(name, self.home, self.seed)
        if not getattr(model, "sequential", False):
            return model.fit(train, catalog)
        try:
            # SASRec early stopping: each user's last item of this log is its validation pair (SASRec.fit without
            # `validation`); over a benchmark's visible log that is exactly `marquee eval`'s model (same cache).
            return model.fit(train, catalog, progress=(lambda p: self.progress(name, p)) if self.progress else None)
        except ValueError as exc:  # too few sequences to train and stop on: the item-item model still works
            log.warning("%s cannot be trained on this interaction log (%s); using %s", name, exc, FALLBACK_MODEL)
            return build(FALLBACK_MODEL).fit(train, catalog)

    def fit(self, train: Interactions, catalog: Catalog) -> "CollaborativeGenerator":
        fitted: dict[str, Recommender] = {}

        def model(name: str) -> Recommender:
            if name not in fitted:
                fitted[name] = self._fitted(name, train, catalog)
            return fitted[name]

        try:
            self.neighbours = model(self.neighbour_model_name)
            self.model = model(self.model_name)
            self.anchor_model = model(self.anchor_model_name)
        finally:
            getattr(self.progress, "close", lambda: None)()
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

    def scores(self, request: CandidateRequest, within: np.ndarray | None = None) -> np.ndarray | None:
        """A score per catalog item, or None when the request has nothing collaborative to go on.

        `within` (bool per catalog item): score only the evidence it marks, in its order: the history and likes
        having the request's genres, for the blend's in-genre signal (retrieval/candidates/blend.py); None when
        none of the evidence is marked."""
        if not self.fitted:
            raise RuntimeError("CollaborativeGenerator.fit(interactions, catalog) must run first")
        liked = self.arrays.indices(request.liked)
        history = self.history_of(request)
        # stated likes are the newest evidence: they follow the history (sequential models read the order)
        model, evidence = (self.model, ordered_union(history, liked)) if history.size else \
            (self.anchor_model, tuple(int(i) for i in liked))
        if within is not None:
            evidence = tuple(i for i in evidence if within[i])
        if not evidence:
            return None
        disliked = self.arrays.indices(request.disliked)
        with single_threaded_blas(), single_threaded_torch():
            scores = model.score([UserContext(history=evidence, user_id=request.user_id)])[0].astype(np.float64)
            if disliked.size:
                neighbours = self.neighbours.score([UserContext(history=tuple(int(i) for i in disliked))])[0]
                scores -= dislike_penalty(scores, neighbours)
        return scores

    def generate(self, request: CandidateRequest, k: int) -> list[Candidate]:
        scores = self.scores(request)
        if scores is None:
            return []
        keep = self.arrays.facts.mask(effective_constraints(request)) & (scores > 0)  # no "neighbours" without evidence
        keep[self.history_of(request)] = False  # a known user's logged history is never recommended back
        return self.arrays.candidates(scores, keep, k, self.name)
