"""Top-k ranking metrics over a binary hit matrix.

`hits[u, r]` is True when the item at rank r (0-based) of user u's list is relevant; `n_relevant[u]` is
how many relevant items user u has (1 under leave-one-out). Every metric returns one value per user, so
that the harness can average them and bootstrap paired differences.
"""
from __future__ import annotations

import numpy as np


def _check(hits: np.ndarray, n_relevant: np.ndarray | int, k: int) -> tuple[np.ndarray, np.ndarray]:
    hits = np.asarray(hits, dtype=bool)
    if hits.ndim != 2:
        raise ValueError(f"hits must be a 2-d (users, ranks) array, got shape {hits.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if k > hits.shape[1]:
        raise ValueError(f"k={k} exceeds the list length {hits.shape[1]}: rank deeper lists")
    rel = np.broadcast_to(np.asarray(n_relevant, dtype=np.float64), (hits.shape[0],))
    if np.any(rel < 1):
        raise ValueError("every user needs at least one relevant item")
    return hits[:, :k], rel


def hit_rate(hits: np.ndarray, n_relevant: np.ndarray | int, k: int) -> np.ndarray:
    """1 when any relevant item is in the top k (HR@k; HR@1 = accuracy of the first pick)."""
    top, _ = _check(hits, n_relevant, k)
    return top.any(axis=1).astype(np.float64)


def recall(hits: np.ndarray, n_relevant: np.ndarray | int, k: int) -> np.ndarray:
    """Share of the relevant items found in the top k (= HR@k with one relevant item)."""
    top, rel = _check(hits, n_relevant, k)
    return top.sum(axis=1) / rel


def precision(hits: np.ndarray, n_relevant: np.ndarray | int, k: int) -> np.ndarray:
    """Share of the top k that is relevant."""
    top, _ = _check(hits, n_relevant, k)
    return top.sum(axis=1) / k


def f1(hits: np.ndarray, n_relevant: np.ndarray | int, k: int) -> np.ndarray:
    """Harmonic mean of precision@k and recall@k (0 when both are 0)."""
    p, r = precision(hits, n_relevant, k), recall(hits, n_relevant, k)
    total = p + r
    return np.divide(2 * p * r, total, out=np.zeros_like(total), where=total > 0)


def ndcg(hits: np.ndarray, n_relevant: np.ndarray | int, k: int) -> np.ndarray:
    """DCG@k / ideal DCG@k with binary gains and log2(rank + 2) discounts."""
    top, rel = _check(hits, n_relevant, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (top * discounts).sum(axis=1)
    ideal_counts = np.minimum(rel, k).astype(np.int64)
    ideal = np.cumsum(discounts)[ideal_counts - 1]
    return dcg / ideal


def mrr(hits: np.ndarray, n_relevant: np.ndarray | int, k: int) -> np.ndarray:
    """1 / (rank of the first relevant item) when it is in the top k, else 0."""
    top, _ = _check(hits, n_relevant, k)
    first = top.argmax(axis=1)
    return np.where(top.any(axis=1), 1.0 / (first + 1), 0.0)


METRICS = {"recall": recall, "ndcg": ndcg, "mrr": mrr, "precision": precision, "f1": f1, "hr": hit_rate}


def all_metrics(hits: np.ndarray, n_relevant: np.ndarray | int, ks: list[int] | tuple[int, ...],
                names: tuple[str, ...] = ("recall", "ndcg", "mrr", "precision", "f1")) -> dict[str, np.ndarray]:
    """{"ndcg@10": per-user values, ...} for every metric name × k."""
    unknown = set(names) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; known: {sorted(METRICS)}")
    return {f"{name}@{k}": METRICS[name](hits, n_relevant, k) for name in names for k in ks}


def hits_from_lists(ranked: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Leave-one-out hit matrix: ranked (users, depth) item indices vs one target item per user."""
    return np.asarray(ranked) == np.asarray(targets)[:, None]


def paired_bootstrap(a: np.ndarray, b: np.ndarray, samples: int = 1000, seed: int = 0,
                     level: float = 0.95) -> dict[str, float]:
    """Mean of a − b over users, with a percentile bootstrap CI from resampling users (paired)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"paired bootstrap needs two equal-length 1-d arrays, got {a.shape} and {b.shape}")
    diff = a - b
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, size=(samples, diff.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return {"diff": float(diff.mean()), "ci_low": float(lo), "ci_high": float(hi),
            "p_not_better": float((means <= 0).mean()), "samples": samples}
