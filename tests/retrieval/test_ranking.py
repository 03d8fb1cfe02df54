"""The protocol's ranking helper, by hand: tie-broken target ranks, NDCG/HR from ranks, exclusion, top-k lists;
and the two places that read it besides `marquee eval` (SASRec early stopping, LoRA validation)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from retrieval.ranking import NO_ITEM, exclusion_mask, hit_rate_at, ndcg_at, target_ranks, top_k

SCORES = np.array([[3.0, 5.0, 5.0, 1.0, np.nan],
                   [0.0, 0.0, 0.0, 0.0, 0.0]])


def test_target_rank_counts_higher_scores_and_equal_scores_at_lower_indices():
    assert target_ranks(SCORES, [2, 4]).tolist() == [1, 4]  # item 1 ties with item 2 and comes first
    assert target_ranks(SCORES, [1, 0]).tolist() == [0, 0]
    assert target_ranks(SCORES, [0, 2]).tolist() == [2, 2]


def test_excluded_and_unscored_items_are_never_ahead_and_an_unscored_target_is_last():
    excluded = np.array([[False, True, False, False, False], [True, True, False, False, False]])
    assert target_ranks(SCORES, [2, 4], excluded).tolist() == [0, 2]
    assert target_ranks(SCORES, [4, 3]).tolist() == [5, 3]  # NaN target: behind every item (rank = n_items)
    assert target_ranks(np.array([[np.inf, 2.0, 1.0]]), [2]).tolist() == [1]  # +inf is not a score


def test_ndcg_and_hit_rate_from_ranks():
    ranks = np.array([0, 1, 9, 10, 500])
    assert ndcg_at(ranks, 10).tolist() == pytest.approx([1.0, 1 / math.log2(3), 1 / math.log2(11), 0.0, 0.0])
    assert hit_rate_at(ranks, 10).tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert hit_rate_at(ranks, 1).tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_the_history_is_excluded_but_never_the_target():
    mask = exclusion_mask([(0, 2), (), (1, 3)], 4, targets=[2, 0, 1])
    assert mask.tolist() == [[True, False, False, False], [False] * 4, [False, False, False, True]]
    assert exclusion_mask([(0, 2)], 3).tolist() == [[True, False, True]]


def test_top_k_lists_ties_by_index_and_pads_with_no_item():
    excluded = np.array([[False, False, True, False, False], [False] * 5])
    assert top_k(SCORES, 4, excluded).tolist() == [[1, 0, 3, NO_ITEM], [0, 1, 2, 3]]
    assert top_k(SCORES[:1], 7).tolist() == [[1, 2, 0, 3, NO_ITEM, NO_ITEM, NO_ITEM]]


def test_ranks_agree_with_the_evaluation_lists_and_metrics():
    from finetune.evaluation.metrics import hits_from_lists, ndcg, recall

    rng = np.random.default_rng(0)
    scores = rng.integers(0, 6, size=(200, 40)).astype(np.float64)  # many ties
    histories = [tuple(rng.choice(40, 5, replace=False)) for _ in range(200)]
    targets = rng.integers(0, 40, size=200)
    excluded = exclusion_mask(histories, 40, targets)
    ranks = target_ranks(scores, targets, excluded)
    hits = hits_from_lists(top_k(scores, 20, excluded), targets)
    assert ranks[hits.any(axis=1)].tolist() == hits.argmax(axis=1)[hits.any(axis=1)].tolist()
    np.testing.assert_array_equal(ndcg_at(ranks, 10), ndcg(hits, 1, 10))
    np.testing.assert_array_equal(hit_rate_at(ranks, 20), recall(hits, 1, 20))


def test_sasrec_early_stopping_keeps_the_epoch_of_its_best_validation_ndcg():
    from retrieval.catalog.schema import Catalog, Interactions, Item
    from retrieval.models.sasrec import SASRec, ndcg_at_10

    rng = np.random.default_rng(1)
    n_items, users, items = 15, [], []
    for u in range(40):  # each user walks the catalog two steps at a time from a random start
        start = rng.integers(n_items)
        users += [u] * 8
        items += [(start + 2 * t) % n_items for t in range(8)]
    inter = Interactions(user_ids=tuple(map(str, range(40))), users=np.asarray(users, np.int32),
                         items=np.asarray(items, np.int32), ratings=np.ones(len(users), np.float32),
                         timestamps=np.zeros(len(users), np.int64))  # all tied: file order is the time order
    catalog = Catalog([Item(item_id=str(i), title=f"Item {i}") for i in range(n_items)])
    model = SASRec(max_len=6, hidden=8, blocks=1, dropout=0.0, lr=3e-2, batch_size=16, max_epochs=15, patience=2,
                   seed=0).fit(inter, catalog)
    curve = [p["val_ndcg@10"] for p in model.curve]
    assert model.best_epoch == int(np.argmax(curve)) + 1  # the first epoch with the best figure (ties don't count)
    assert len(curve) == model.best_epoch + 2 < 15  # stopped `patience` epochs after it
    validation = [(tuple(items[8 * u: 8 * u + 7]), items[8 * u + 7]) for u in range(40)]  # last item held out
    histories, targets = [h for h, _ in validation], [t for _, t in validation]
    scores = model.score([_context(h) for h in histories])
    # the restored weights reproduce the best epoch's figure, and that figure is the protocol's NDCG@10
    assert ndcg_at_10(scores, histories, targets) == pytest.approx(curve[model.best_epoch - 1], abs=1e-9)
    by_hand = []
    for row, (history, target) in enumerate(validation):
        ahead = [i for i in range(n_items) if (i not in history or i == target) and (scores[row, i] > scores[row, target] or (
            scores[row, i] == scores[row, target] and i < target))]
        by_hand.append(1 / math.log2(len(ahead) + 2) if len(ahead) < 10 else 0.0)
    assert ndcg_at_10(scores, histories, targets) == pytest.approx(float(np.mean(by_hand)), abs=1e-12)


def _context(history):
    from retrieval.recommender import UserContext

    return UserContext(history=tuple(int(i) for i in history))
