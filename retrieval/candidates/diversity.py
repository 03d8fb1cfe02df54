"""Beyond-accuracy re-ordering: a long-tail knob and MMR (Carbonell & Goldstein, 1998).

- long tail: relevance' = relevance − long_tail · popularity, both min-max scaled over the list, so
  long_tail=1 lets a niche item overtake a blockbuster of equal relevance.
- MMR: greedily pick argmax λ·relevance − (1−λ)·max cosine(item, already picked), on the item
  embeddings; λ=1 keeps the relevance order, lower λ trades relevance for intra-list diversity.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retrieval.candidates.base import Candidate
from retrieval.candidates.threads import single_threaded_blas


def _minmax(x: np.ndarray) -> np.ndarray:
    span = float(x.max() - x.min()) if x.size else 0.0
    return np.zeros_like(x) if span == 0.0 else (x - x.min()) / span


def long_tail_rerank(candidates: Sequence[Candidate], long_tail: float) -> list[Candidate]:
    """Re-order by relevance minus a popularity penalty; `long_tail` ≤ 0 changes nothing."""
    if long_tail <= 0 or len(candidates) < 2:
        return list(candidates)
    relevance = _minmax(np.array([c.score for c in candidates], dtype=np.float64))
    popularity = _minmax(np.log1p(np.array([c.item.popularity for c in candidates], dtype=np.float64)))
    adjusted = relevance - long_tail * popularity
    order = sorted(range(len(candidates)), key=lambda i: (-adjusted[i], i))
    return [candidates[i] for i in order]


def mmr(candidates: Sequence[Candidate], embeddings: np.ndarray, k: int, lam: float) -> list[Candidate]:
    """Maximal marginal relevance selection of k candidates (in order); `embeddings` are L2-normalised
    rows aligned with `candidates`. Relevance is the candidates' order (rank-based, so the score scale
    of the fused list does not matter)."""
    n = len(candidates)
    k = min(k, n)
    if lam >= 1.0 or n <= 1:
        return list(candidates[:k])
    if embeddings.shape[0] != n:
        raise ValueError(f"{embeddings.shape[0]} embeddings for {n} candidates")
    relevance = 1.0 - np.arange(n, dtype=np.float64) / max(n - 1, 1)  # 1 … 0 by rank
    with single_threaded_blas():
        sim = embeddings @ embeddings.T
    picked: list[int] = []
    max_sim = np.full(n, -np.inf)
    available = np.ones(n, dtype=bool)
    for _ in range(k):
        redundancy = np.where(np.isfinite(max_sim), max_sim, 0.0)
        gain = lam * relevance - (1.0 - lam) * redundancy
        gain[~available] = -np.inf
        best = int(np.argmax(gain))  # argmax takes the first maximum: ties keep the relevance order
        picked.append(best)
        available[best] = False
        max_sim = np.maximum(max_sim, sim[best])
    return [candidates[i] for i in picked]


def intra_list_similarity(embeddings: np.ndarray) -> float:
    """Mean pairwise cosine similarity of a list (lower = more diverse)."""
    n = embeddings.shape[0]
    if n < 2:
        return 0.0
    sim = embeddings @ embeddings.T
    return float((sim.sum() - np.trace(sim)) / (n * (n - 1)))
