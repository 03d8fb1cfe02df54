"""Turning score matrices into ranked lists under the protocol's rules (docs/ARCHITECTURE.md §6).

Full ranking: every catalog item minus the user's history (the target is never removed, even when it
also occurs in the history); equal scores are ordered by catalog index (stable sort of −score).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NO_ITEM = -1  # padding when fewer than `depth` items are rankable


def checked_scores(scores: np.ndarray, n_rows: int, n_cols: int, ranker: str) -> np.ndarray:
    """A float64 copy of a ranker's output, with a clear error when its shape is wrong."""
    scores = np.asarray(scores)
    if scores.shape != (n_rows, n_cols):
        raise ValueError(f"ranker {ranker!r} returned scores of shape {scores.shape}, expected ({n_rows}, {n_cols})")
    return scores.astype(np.float64, copy=True)


def exclusion_mask(histories: Sequence[Sequence[int]], targets: Sequence[int], n_items: int) -> np.ndarray:
    """True where an item must not be recommended: the history, except the target itself."""
    mask = np.zeros((len(histories), n_items), dtype=bool)
    for row, history in enumerate(histories):
        if len(history):
            mask[row, np.asarray(history, dtype=np.int64)] = True
    mask[np.arange(len(targets)), np.asarray(targets, dtype=np.int64)] = False
    return mask


def top_k(scores: np.ndarray, depth: int, excluded: np.ndarray | None = None) -> np.ndarray:
    """(users, depth) item indices, best first; ties by index; excluded / non-finite items never listed."""
    valid = np.isfinite(scores)
    if excluded is not None:
        valid &= ~excluded
    keyed = np.where(valid, scores, -np.inf)
    order = np.argsort(-keyed, axis=1, kind="stable")[:, :depth]  # stable => equal scores by index
    listed = np.take_along_axis(valid, order, axis=1)
    lists = np.where(listed, order, NO_ITEM)
    if lists.shape[1] < depth:  # a catalog smaller than the list depth: pad with "no item"
        lists = np.pad(lists, ((0, 0), (0, depth - lists.shape[1])), constant_values=NO_ITEM)
    return lists


def target_ranks(scores: np.ndarray, targets: np.ndarray, excluded: np.ndarray | None = None) -> np.ndarray:
    """0-based rank of each target in the full ranking (items ahead: higher score, or equal and lower index)."""
    n_users, n_items = scores.shape
    targets = np.asarray(targets, dtype=np.int64)
    valid = np.isfinite(scores) if excluded is None else np.isfinite(scores) & ~excluded
    keyed = np.where(valid, scores, -np.inf)
    t = keyed[np.arange(n_users), targets][:, None]
    ahead = (keyed > t) | ((keyed == t) & (np.arange(n_items)[None, :] < targets[:, None]))
    ranks = (ahead & valid).sum(axis=1)
    # a target without a finite score is unrankable: put it behind every item
    return np.where(np.isfinite(t[:, 0]), ranks, n_items)


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
