"""What the harness adds to `retrieval.ranking` (the protocol's exclusion, tie and top-k rules, docs/ARCHITECTURE.md §6): checking a
ranker's score matrix, and merging a reranker's order of the top candidates into the retriever's list.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retrieval.ranking import NO_ITEM


def checked_scores(scores: np.ndarray, n_rows: int, n_cols: int, ranker: str) -> np.ndarray:
    """A float64 copy of a ranker's output, with a clear error when its shape is wrong."""
    scores = np.asarray(scores)
    if scores.shape != (n_rows, n_cols):
        raise ValueError(f"ranker {ranker!r} returned scores of shape {scores.shape}, expected ({n_rows}, {n_cols})")
    return scores.astype(np.float64, copy=True)


def merge_reranked(reranked: np.ndarray, retriever_list: np.ndarray, depth: int) -> np.ndarray:
    """The reranker's order of the retriever's top candidates, then the rest of the retriever's order."""
    out = np.full((retriever_list.shape[0], depth), NO_ITEM, dtype=np.int64)
    for row in range(retriever_list.shape[0]):
        head = [int(i) for i in reranked[row] if i != NO_ITEM]
        seen = set(head)
        tail = [int(i) for i in retriever_list[row] if i != NO_ITEM and int(i) not in seen]
        merged = (head + tail)[:depth]
        out[row, :len(merged)] = merged
    return out
