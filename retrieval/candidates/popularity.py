"""Popularity prior: what most people watched. The cold-start answer (no query, no likes, no history)
and a weak prior mixed into every fused list (weight `candidates.weights["popularity"]`)."""
from __future__ import annotations

import numpy as np

from retrieval.candidates.base import Candidate, CandidateGenerator, CandidateRequest
from retrieval.candidates.filtering import CatalogArrays, effective_constraints
from retrieval.catalog.schema import Catalog, Interactions


class PopularityGenerator(CandidateGenerator):
    name = "popularity"

    def __init__(self, arrays: CatalogArrays, counts: np.ndarray | None = None):
        self.arrays = arrays
        # log damping: the score is comparable across catalogs and readable in `sources`
        self.scores = np.log1p(arrays.popularity if counts is None else np.asarray(counts, dtype=np.float64))

    def fit(self, train: Interactions, catalog: Catalog) -> "PopularityGenerator":
        """Counts from a training log only (evaluation must not see held-out interactions)."""
        self.scores = np.log1p(np.bincount(train.items, minlength=len(catalog)).astype(np.float64))
        return self

    def generate(self, request: CandidateRequest, k: int) -> list[Candidate]:
        keep = self.arrays.facts.mask(effective_constraints(request))
        return self.arrays.candidates(self.scores, keep, k, self.name)
