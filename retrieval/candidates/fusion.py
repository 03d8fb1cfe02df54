"""Weighted reciprocal-rank fusion (Cormack et al., 2009): score(d) = Σ_g w_g / (rrf_k + rank_g(d)).

Ranks, not raw scores, are fused: cosine similarities, EASE scores and log-counts live on
incomparable scales. Each fused candidate keeps every generator's own score in `sources`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from retrieval.candidates.base import Candidate


def reciprocal_rank_fusion(lists: Mapping[str, Sequence[Candidate]], weights: Mapping[str, float],
                           rrf_k: int = 60) -> list[Candidate]:
    """Fuse ranked lists named by generator; a generator missing from `weights` gets weight 1.

    Duplicates within one list count once, at their best rank, and do not push later items
    down. Ties are broken by item id so the
    output is deterministic.
    """
    if rrf_k < 0:
        raise ValueError(f"rrf_k must be ≥ 0, got {rrf_k}")
    fused: dict[str, float] = {}
    items: dict[str, Candidate] = {}
    sources: dict[str, dict[str, float]] = {}
    for name, ranked in lists.items():
        weight = float(weights.get(name, 1.0))
        seen: set[str] = set()
        for cand in ranked:
            item_id = cand.item.item_id
            if item_id in seen:
                continue
            seen.add(item_id)
            rank = len(seen)  # rank among the list's distinct items
            items.setdefault(item_id, cand)
            fused[item_id] = fused.get(item_id, 0.0) + weight / (rrf_k + rank)
            sources.setdefault(item_id, {})[name] = float(cand.sources.get(name, cand.score))
    order = sorted(fused, key=lambda i: (-fused[i], i))
    return [Candidate(item=items[i].item, score=fused[i], sources=MappingProxyType(sources[i])) for i in order]
