"""Ranking under the evaluation protocol, in one place (docs/ARCHITECTURE.md, evaluation protocol).

Full ranking: every catalog item minus the user's history, but the target is never removed (even when it also
occurs in the history); equal scores are ordered by catalog index; items without a finite score are never
ranked. The top-k lists of `marquee eval`, SASRec's early stopping and the LoRA reranker's validation all use
these functions, so a target's rank means the same thing everywhere.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NO_ITEM = -1  # padding of a top-k list when fewer than k items are rankable


def exclusion_mask(histories: Sequence[Sequence[int]], n_items: int,
                   targets: Sequence[int] | None = None) -> np.ndarray:
    """(users, n_items) True where an item must not be recommended: the history, except the target itself."""
    mask = np.zeros((len(histories), n_items), dtype=bool)
    for row, history in enumerate(histories):
        if len(history):
            mask[row, np.asarray(history, dtype=np.int64)] = True
    if targets is not None:
        mask[np.arange(len(targets)), np.asarray(targets, dtype=np.int64)] = False
    return mask


def _keyed(scores: np.ndarray, excluded: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    valid = np.isfinite(scores)
    if excluded is not None:
        valid &= ~excluded
    return np.where(valid, scores, -np.inf), valid


def top_k(scores: np.ndarray, depth: int, excluded: np.ndarray | None = None) -> np.ndarray:
    """(users, depth) item indices, best first; ties by index; excluded / non-finite items never listed."""
    keyed, valid = _keyed(scores, excluded)
    order = np.argsort(-keyed, axis=1, kind="stable")[:, :depth]  # stable => equal scores by index
    lists = np.where(np.take_along_axis(valid, order, axis=1), order, NO_ITEM)
    if lists.shape[1] < depth:  # a catalog smaller than the list depth: pad with "no item"
        lists = np.pad(lists, ((0, 0), (0, depth - lists.shape[1])), constant_values=NO_ITEM)
    return lists


def target_ranks(scores: np.ndarray, targets: Sequence[int], excluded: np.ndarray | None = None) -> np.ndarray:
    """0-based rank of each user's target: the rankable items ahead of it (a higher score, or an equal score
    and a lower index). A target without a finite score is unrankable: rank n_items, behind everything."""
    scores = np.asarray(scores, dtype=np.float64)
    n_users, n_items = scores.shape
    targets = np.asarray(targets, dtype=np.int64)
    keyed, valid = _keyed(scores, excluded)
    t = keyed[np.arange(n_users), targets][:, None]
    ahead = (keyed > t) | ((keyed == t) & (np.arange(n_items)[None, :] < targets[:, None]))
    ranks = (ahead & valid).sum(axis=1)
    return np.where(np.isfinite(t[:, 0]), ranks, n_items)


def ndcg_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per user NDCG@k of one relevant item at 0-based `ranks`: 1 / log2(rank + 2) inside the top k, else 0."""
    ranks = np.asarray(ranks)
    return np.where(ranks < k, 1.0 / np.log2(ranks + 2), 0.0)


def hit_rate_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per user HR@k (= Recall@k with one relevant item): 1 when the rank is inside the top k."""
    return (np.asarray(ranks) < k).astype(np.float64)
