"""Ranking metrics against hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest

from finetune.evaluation import metrics

# three users: target at rank 1, at rank 3, missed
HITS = np.array([[1, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]], dtype=bool)


def test_single_target_metrics():
    assert metrics.ndcg(HITS, 1, 5).tolist() == pytest.approx([1.0, 1 / math.log2(4), 0.0])
    assert metrics.recall(HITS, 1, 5).tolist() == [1.0, 1.0, 0.0]
    assert metrics.recall(HITS, 1, 2).tolist() == [1.0, 0.0, 0.0]
    assert metrics.mrr(HITS, 1, 5).tolist() == pytest.approx([1.0, 1 / 3, 0.0])
    assert metrics.precision(HITS, 1, 5).tolist() == pytest.approx([0.2, 0.2, 0.0])
    assert metrics.f1(HITS, 1, 5).tolist() == pytest.approx([2 * 0.2 / 1.2, 2 * 0.2 / 1.2, 0.0])
    assert metrics.hit_rate(HITS, 1, 1).tolist() == [1.0, 0.0, 0.0]


def test_several_relevant_items():
    hits = np.array([[1, 0, 1]], dtype=bool)
    ideal = 1 + 1 / math.log2(3)
    assert metrics.ndcg(hits, 2, 3)[0] == pytest.approx((1 + 1 / math.log2(4)) / ideal)
    assert metrics.recall(hits, 4, 3)[0] == pytest.approx(0.5)
    assert metrics.ndcg(hits, 5, 3)[0] == pytest.approx((1 + 0.5) / (1 + 1 / math.log2(3) + 0.5))


def test_all_metrics_names_and_lists():
    ranked = np.array([[4, 2, 7], [1, 3, 9]])
    hits = metrics.hits_from_lists(ranked, np.array([2, 5]))
    out = metrics.all_metrics(hits, 1, [1, 3])
    assert set(out) == {f"{m}@{k}" for m in ("recall", "ndcg", "mrr", "precision", "f1") for k in (1, 3)}
    assert out["mrr@3"].tolist() == pytest.approx([0.5, 0.0])


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match="exceeds the list length"):
        metrics.ndcg(HITS, 1, 10)
    with pytest.raises(ValueError, match="2-d"):
        metrics.recall(np.array([True, False]), 1, 1)
    with pytest.raises(ValueError, match="at least one relevant"):
        metrics.recall(HITS, 0, 1)
    with pytest.raises(ValueError, match="unknown metrics"):
        metrics.all_metrics(HITS, 1, [1], ("auc",))


def test_paired_bootstrap():
    rng = np.random.default_rng(1)
    b = rng.random(500)
    same = metrics.paired_bootstrap(b, b)
    assert same["diff"] == 0 and same["ci_low"] == 0 and same["ci_high"] == 0
    shifted = metrics.paired_bootstrap(b + 0.1, b)
    assert shifted["diff"] == pytest.approx(0.1) and shifted["ci_low"] == pytest.approx(0.1)
    noisy = metrics.paired_bootstrap(b + rng.normal(0.05, 0.2, 500), b, samples=2000, seed=3)
    assert noisy["ci_low"] < noisy["diff"] < noisy["ci_high"] and noisy["ci_low"] > 0
    with pytest.raises(ValueError, match="equal-length"):
        metrics.paired_bootstrap(b, b[:10])
