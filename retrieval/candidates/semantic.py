"""Semantic candidates: the request's text embedded and searched in the Chroma item store, with the
hard constraints pushed down as Chroma `where` filters (and re-checked here, so a store that
ignores a filter can never leak a forbidden item).

The query is the request's text; without one it is "more like these": the normalised mean of the
stored vectors of the liked items, else of the last few history items (a known user asking "what
next?"). The query is embedded here, single-threaded (see `threads`); a store without vector search
gets the text (or the seed items' titles) instead.

`similarities(text)` scores every catalog item against a text (the blend's semantic signal,
retrieval/candidates/blend.py): the query vector against all stored item vectors at once.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from retrieval.candidates.base import Candidate, CandidateGenerator, CandidateRequest
from retrieval.candidates.filtering import effective_constraints
from retrieval.candidates.threads import single_threaded_blas, single_threaded_torch
from retrieval.catalog.schema import Catalog
from retrieval.constraints import Constraints

HISTORY_SEEDS = 3  # recent history items standing in for a query
MAX_QUERY_CHARS = 2000  # MiniLM reads 256 tokens anyway; a 10k-character message must not cost more


class SearchableStore(Protocol):
    """What the generator needs of `retrieval.store.ItemStore` (search_vector/embeddings are optional)."""

    def search(self, query: str, k: int, constraints: Constraints | None = None) -> list[tuple[str, float]]: ...


class SemanticGenerator(CandidateGenerator):
    name = "semantic"

    def __init__(self, store: SearchableStore, catalog: Catalog, item_matrix: Callable[[], np.ndarray] | None = None):
        """`item_matrix()`: the stored vectors of every catalog item, in catalog order (shared and cached by the
        service); without it `similarities` asks the store for them once."""
        self.store = store
        self.catalog = catalog
        self._item_matrix = item_matrix
        self._matrix: np.ndarray | None = None

    def seeds(self, request: CandidateRequest) -> list[str]:
        """Items standing in for a query: the liked ones, else the most recent history."""
        chosen = request.liked or request.history[-HISTORY_SEEDS:]
        return [i for i in dict.fromkeys(chosen) if i in self.catalog]

    def query_text(self, request: CandidateRequest) -> str:
        if request.query.strip():
            return request.query.strip()[:MAX_QUERY_CHARS]
        return "; ".join(self.catalog[i].label for i in self.seeds(request))[:MAX_QUERY_CHARS]

    def query_vector(self, request: CandidateRequest) -> np.ndarray | None:
        """The vector to search with, or None when the store must embed the text itself."""
        if not (hasattr(self.store, "search_vector") and hasattr(self.store, "embeddings")):
            return None
        if request.query.strip():
            return self.text_vector(self.query_text(request))
        seeds = self.seeds(request)
        if not seeds:
            return None
        centroid = np.asarray(self.store.embeddings(seeds), dtype=np.float32).mean(axis=0)
        norm = float(np.linalg.norm(centroid))
        return centroid / norm if norm > 0 else None

    def text_vector(self, text: str) -> np.ndarray | None:
        encoder = getattr(self.store, "encoder", None)
        if encoder is None or not text.strip():
            return None
        with single_threaded_torch():  # one short query: 1 thread is far faster on a busy CPU
            return np.asarray(encoder.encode_query(text.strip()[:MAX_QUERY_CHARS]), dtype=np.float32)

    def matrix(self) -> np.ndarray | None:
        """(n_items, dim) stored vectors in catalog order, or None for a store without them."""
        if self._matrix is None:
            if self._item_matrix is not None:
                self._matrix = self._item_matrix()
            elif hasattr(self.store, "embeddings"):
                self._matrix = np.asarray(self.store.embeddings([it.item_id for it in self.catalog]), dtype=np.float32)
        return self._matrix

    def similarities(self, text: str) -> np.ndarray | None:
        """Cosine similarity of `text` to every catalog item (catalog order); None without text. A store that
        cannot give vectors is searched for the whole catalog instead (items it does not return score lowest)."""
        if not text.strip():
            return None
        vector, matrix = self.text_vector(text), self.matrix()
        if vector is not None and matrix is not None:
            with single_threaded_blas():
                return matrix @ vector
        hits = self.store.search(text.strip()[:MAX_QUERY_CHARS], len(self.catalog))
        if not hits:
            return None
        out = np.full(len(self.catalog), min(score for _, score in hits) - 1e-6)
        for item_id, score in hits:
            if item_id in self.catalog:
                out[self.catalog.index_of(item_id)] = score
        return out

    def _hits(self, request: CandidateRequest, k: int, constraints: Constraints) -> list[tuple[str, float]]:
        vector = self.query_vector(request)
        if vector is not None:
            return [(h.item_id, h.score) for h in self.store.search_vector(vector, k, constraints)]
        text = self.query_text(request)
        return self.store.search(text, k, constraints) if text else []

    def generate(self, request: CandidateRequest, k: int) -> list[Candidate]:
        if k <= 0:
            return []
        constraints = effective_constraints(request)
        out: list[Candidate] = []
        for item_id, similarity in self._hits(request, k, constraints):
            item = self.catalog.get(item_id)
            if item is not None and constraints.allows(item):  # stale index rows or ignored filters
                out.append(Candidate(item=item, score=float(similarity), sources={self.name: float(similarity)}))
        return out
