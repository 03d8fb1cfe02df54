"""Semantic-only ranker: MiniLM content similarity, no collaborative signal.

The user profile is the mean embedding of the (most recent) history items; every catalog item is scored
by its cosine with that profile. Item vectors are the catalog documents (`Item.document()`: title, year,
genres, description) encoded directly with our `SentenceEncoder` (no vector store needed), and cached as
`<home>/models/semantic-<hash>.npy`, keyed by the encoder and the exact texts.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from retrieval.catalog.schema import Catalog, Interactions
from retrieval.recommender import Recommender, UserContext, register, take_candidates

TEXTS = ("document", "label")


@register("semantic")
class SemanticRanker(Recommender):
    def __init__(self, encoder=None, recent: int = 5, text: str = "label", home: str | Path | None = None):
        """`encoder`: a `retrieval.embeddings.SentenceEncoder` (default: the embedded MiniLM);
        `recent`: profile from the last N history items (0 = all); `text`: 'document' or 'label' (title).
        The defaults were tuned on the leave-one-out VALIDATION split of ML-100k: the last 5 history titles."""
        if text not in TEXTS:
            raise ValueError(f"text must be one of {', '.join(TEXTS)}, got {text!r}")
        if recent < 0:
            raise ValueError(f"recent must be >= 0 (0 = whole history), got {recent}")
        self.encoder = encoder
        self.recent = int(recent)
        self.text = text
        self.home = Path(home) if home else None

    def fit(self, train: Interactions, catalog: Catalog) -> "SemanticRanker":
        super().fit(train, catalog)
        if self.encoder is None:
            from retrieval.embeddings import SentenceEncoder

            self.encoder = SentenceEncoder()
        texts = [it.document() if self.text == "document" else it.label for it in catalog]
        self.vectors = self._cached_vectors(texts)
        return self

    def _cached_vectors(self, texts: list[str]) -> np.ndarray:
        if self.home is None:
            return self.encoder.encode(texts)
        key = hashlib.sha256("\n".join([self.encoder.identity, str(self.encoder.cfg.dtype), *texts]).encode())
        path = self.home / "models" / f"semantic-{key.hexdigest()[:16]}.npy"
        if path.is_file():
            return np.load(path)
        vectors = self.encoder.encode(texts)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npy")
        np.save(tmp, vectors)
        tmp.replace(path)  # atomic
        return vectors

    def score(self, users: Sequence[UserContext], candidates: np.ndarray | None = None) -> np.ndarray:
        profiles = np.zeros((len(users), self.vectors.shape[1]), dtype=np.float32)
        for row, user in enumerate(users):
            history = user.history[-self.recent:] if self.recent else user.history
            if history:
                profiles[row] = self.vectors[list(history)].mean(axis=0)
        norms = np.linalg.norm(profiles, axis=1, keepdims=True)
        profiles = np.divide(profiles, norms, out=np.zeros_like(profiles), where=norms > 0)
        return take_candidates(profiles @ self.vectors.T, candidates)
