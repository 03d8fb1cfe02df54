"""The harness on a tiny hand-made dataset: what is ranked, excluded, reranked, skipped and reported."""
from __future__ import annotations

import numpy as np
import pytest

from finetune.evaluation import beyond
from finetune.evaluation.harness import Harness
from retrieval.config import EvalConfig
from finetune.evaluation.rankers import RANKERS, ComponentMissing, RankerEntry
from retrieval.ranking import NO_ITEM
from retrieval.recommender import Recommender, take_candidates


class ConstantRanker(Recommender):
    """Every item scores the same: the order is decided by the protocol's tie rule alone."""

    def score(self, users, candidates=None):
        return take_candidates(np.zeros((len(users), self.n_items)), candidates)


class HistoryLover(Recommender):
    """Scores the user's own history highest (a ranker that relies on the harness's filter)."""

    def score(self, users, candidates=None):
        out = np.zeros((len(users), self.n_items))
        for row, u in enumerate(users):
            out[row, list(u.history)] = 10.0
        return take_candidates(out, candidates)


class HighIndexFirst(Recommender):
    """A 'reranker' that orders candidates by descending catalog index."""

    def score(self, users, candidates=None):
        full = np.tile(np.arange(self.n_items, dtype=float), (len(users), 1))
        return take_candidates(full, candidates)


class WrongShape(Recommender):
    def score(self, users, candidates=None):
        return np.zeros((len(users), 3))


def _register(monkeypatch, name, cls, family="baseline", reranks=False, retriever=None):
    def build(ctx, params):
        if cls is None:
            raise ComponentMissing("the widget is not installed yet")
        return cls().fit(ctx.split.train, ctx.dataset.catalog)

    monkeypatch.setitem(RANKERS, name, RankerEntry(name, family, build,
                                                   {"retriever": retriever} if reranks else {}, reranks))


@pytest.fixture
def harness_for(tiny_dataset, tmp_path):
    def make(rankers, **cfg):
        config = EvalConfig(rankers=rankers, ks=[1, 3], sampled_negatives=2, sampled_ks=[1, 3], beyond_k=3,
                            rerank_depth=3, bootstrap_samples=50, **cfg)
        return Harness(config, tiny_dataset, tmp_path, log=lambda msg: None)

    return make


def test_full_ranking_keeps_target_orders_ties_by_index_and_drops_history(monkeypatch, harness_for):
    _register(monkeypatch, "constant", ConstantRanker)
    h = harness_for(["constant"])
    result = h.evaluate("constant")
    assert result.status == "ok"
    by_user = {c.user_id: (c, row) for c, row in zip(h.cases, result.lists)}
    case_a, list_a = by_user["a"]
    assert case_a.target in case_a.history  # user a re-watched its test item
    assert list_a[:5].tolist() == [2, 4, 5, 6, 7]  # target kept; the rest of the history dropped; index order
    assert (list_a[5:] == NO_ITEM).all()
    case_b, list_b = by_user["b"]
    assert list_b[:5].tolist() == [0, 1, 2, 3, 7] and case_b.target == 7
    # metrics follow from those lists: a hits at rank 1, b at rank 5 (outside @3)
    hit_at_1 = {u: row[0] == by_user[u][0].target for u, (_, row) in by_user.items()}
    assert result.metrics["hr@1"] == pytest.approx(np.mean(list(hit_at_1.values())))


def test_history_is_filtered_but_counted_as_raw_repeats(monkeypatch, harness_for):
    _register(monkeypatch, "history-lover", HistoryLover)
    h = harness_for(["history-lover"])
    result = h.evaluate("history-lover")
    for case, row in zip(h.cases, result.lists):
        listed = set(row[row != NO_ITEM].tolist())
        assert not (listed & (set(case.history) - {case.target}))
    assert result.validity["history_repeat"] > 0.5
    assert result.validity["duplicate"] == 0 and result.validity["out_of_catalog"] == 0


def test_reranker_reorders_the_retriever_head_then_keeps_its_order(monkeypatch, harness_for):
    _register(monkeypatch, "constant", ConstantRanker)
    _register(monkeypatch, "high-first", HighIndexFirst, family="llm", reranks=True, retriever="constant")
    h = harness_for(["constant", "high-first"])
    base, reranked = h.evaluate("constant"), h.evaluate("high-first")
    for b, r in zip(base.lists, reranked.lists):
        assert r[:3].tolist() == sorted(b[:3].tolist(), reverse=True)
        assert r[3:].tolist() == b[3:].tolist()
    targets = np.array([c.target for c in h.cases])
    assert reranked.ceiling_recall == pytest.approx(np.mean([t in b[:3] for t, b in zip(targets, base.lists)]))
    assert reranked.retriever == "constant"


def test_sampled_negatives_are_fixed_and_unseen(harness_for, tiny_dataset):
    h1, h2 = harness_for(["mostpop"]), harness_for(["mostpop"])
    assert np.array_equal(h1.sampled, h2.sampled)
    inter = tiny_dataset.interactions
    for case, row in zip(h1.cases, h1.sampled):
        seen = set(inter.items[inter.users == case.user].tolist())
        assert row[0] == case.target and not (set(row[1:].tolist()) & seen)


def test_missing_and_broken_rankers_are_reported_not_fatal(monkeypatch, harness_for):
    _register(monkeypatch, "widget", None)
    _register(monkeypatch, "wrong-shape", WrongShape)
    results = harness_for(["widget", "wrong-shape", "mostpop"]).run()
    status = {r.name: (r.status, r.message) for r in results}
    assert status["widget"] == ("skipped", "SKIPPED widget: the widget is not installed yet")
    assert status["wrong-shape"][0] == "failed" and "expected (4, 8)" in status["wrong-shape"][1]
    assert status["mostpop"][0] == "ok"


def test_unknown_ranker_fails_before_any_work(harness_for):
    with pytest.raises(ValueError, match="unknown ranker 'nope'"):
        harness_for(["mostpop", "nope"]).run()


def test_beyond_accuracy_by_hand(tiny_dataset):
    genres = beyond.genre_matrix(tiny_dataset.catalog)
    lists = np.array([[0, 1, NO_ITEM], [0, 5, 6]])  # Action | Action+Sci-Fi ; Action, Action, Sci-Fi
    assert beyond.catalog_coverage(lists, 8) == pytest.approx(4 / 8)
    # user 1: 1 - 1/2 ; user 2: pairs (A,A)=0, (A,S)=1, (A,S)=1 -> 2/3
    assert beyond.intra_list_diversity(lists, genres) == pytest.approx((0.5 + 2 / 3) / 2)
    popularity = np.array([9, 1, 1, 1, 1, 1, 1, 5], dtype=float)
    head = beyond.head_items(popularity, 0.25)  # 2 of 8 items: index 0 and 7
    assert np.flatnonzero(head).tolist() == [0, 7]
    assert beyond.long_tail_share(lists, head) == pytest.approx(3 / 5)
    assert beyond.novelty(np.array([[0]]), popularity, 9) == pytest.approx(-np.log2(10 / 10))
