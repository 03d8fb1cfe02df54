"""The listwise reranker: one pass over the label tokens, a distribution over exactly the candidates, fusion."""
from __future__ import annotations

import numpy as np
import pytest

from agent.llm.prompting import UserSummary
from agent.llm.reranker import LLMReranker, fuse, minmax
from retrieval.candidates.base import Candidate
from retrieval.recommender import UserContext

USER = UserSummary(liked=("Alien (1979)", "The Terminator (1984)"), recent=("Heat (1995)", "Fargo (1996)"),
                   request="sci-fi and action films")


def titles(catalog, n, start=0):
    return [it.label for it in list(catalog)[start:start + n]]


def test_scores_are_a_distribution_over_exactly_the_candidates(reranker, catalog):
    lists = [titles(catalog, 20), titles(catalog, 5, 300)]
    scores = reranker.llm_scores([USER, UserSummary()], lists)
    for got, cands in zip(scores, lists):
        assert got.shape == (len(cands),) and np.isfinite(got).all()
        assert np.exp(got).sum() == pytest.approx(1.0, abs=1e-9)


def test_permutations_and_calibration_still_give_a_distribution(backend, catalog):
    ranker = LLMReranker(backend, weight=1.0, permutations=3, calibrate=True)
    orders = ranker.scorer.orders(4)
    assert orders[:2] == [(0, 1, 2, 3), (3, 2, 1, 0)] and len(set(orders)) == 3
    got = ranker.llm_scores([USER], [titles(catalog, 8)])[0]
    assert got.shape == (8,) and np.exp(got).sum() == pytest.approx(1.0, abs=1e-9)
    # the label prior is a real, non-uniform distribution (the bias being corrected)
    prior = ranker.scorer.prior(8)
    assert np.exp(prior).sum() == pytest.approx(1.0, abs=1e-9) and prior.max() - prior.min() > 0.1


def test_too_many_or_no_candidates_are_refused(reranker, catalog):
    with pytest.raises(ValueError, match="1..20 candidates"):
        reranker.llm_scores([USER], [titles(catalog, 21)])
    with pytest.raises(ValueError, match="one candidate list per user"):
        reranker.llm_scores([USER, USER], [titles(catalog, 3)])


def test_batched_scores_match_one_by_one(reranker, catalog):
    short = titles(catalog, 4, 50)  # left-padded when batched with the long list
    long = titles(catalog, 20, 100)
    together = reranker.llm_scores([USER, UserSummary(request="x")], [long, short])
    alone = reranker.llm_scores([UserSummary(request="x")], [short])[0]
    np.testing.assert_allclose(together[1], alone, atol=0.1)
    assert np.argmax(together[1]) == np.argmax(alone)


def test_weight_zero_reproduces_the_retriever_order(backend, catalog):
    items = list(catalog)[200:215]
    rng = np.random.default_rng(3)
    cands = [Candidate(item=it, score=float(s)) for it, s in zip(items, rng.random(len(items)))]
    expected = [c.item.item_id for c in sorted(cands, key=lambda c: -c.score)]
    zero = LLMReranker(backend, weight=0.0).rerank(USER, cands)
    assert [r.candidate.item.item_id for r in zero] == expected
    strong = LLMReranker(backend, weight=5.0).rerank(USER, cands)
    assert sorted(r.candidate.item.item_id for r in strong) == sorted(expected)  # same items, reordered by fusion
    for r in strong:
        assert r.score == pytest.approx(r.retriever_score + 5.0 * r.llm_score)


def test_fusion_math():
    assert minmax(np.array([2.0, 2.0])).tolist() == [0.0, 0.0]
    np.testing.assert_allclose(fuse(np.array([1.0, 3.0, 2.0]), np.log([0.2, 0.3, 0.5]), 0.5),
                               [0.0 + 0.5 * np.log(0.2), 1.0 + 0.5 * np.log(0.3), 0.5 + 0.5 * np.log(0.5)])


@pytest.fixture(scope="module")
def ease_users(ml100k):
    from retrieval.models.ease import EASE

    ease = EASE().fit(ml100k.interactions, ml100k.catalog)
    rows = ml100k.interactions.chronological()
    users = [UserContext(history=tuple(int(i) for i in ml100k.interactions.items[rows[u]][-15:]), user_id=str(u))
             for u in (0, 7)]
    return ease, users


def test_recommender_interface_reranks_the_base_top_k(backend, ml100k, ease_users):
    ease, users = ease_users
    base = ease.score(users)
    for weight in (0.0, 1.0):
        ranker = LLMReranker(backend, weight=weight, max_candidates=10, base=ease).fit(ml100k.interactions,
                                                                                             ml100k.catalog)
        scores = ranker.score(users)
        assert scores.shape == base.shape
        for row, user in enumerate(users):
            base_top = [i for i, _ in ease.rank(user, 10, exclude=user.history)]
            top = [i for i, _ in ranker.rank(user, 10, exclude=user.history)]
            assert sorted(top) == sorted(base_top)  # reranking never brings in or drops items
            if weight == 0.0:
                assert top == base_top
            below = [i for i, _ in ranker.rank(user, 13, exclude=user.history)][10:]
            assert below == [i for i, _ in ease.rank(user, 13, exclude=user.history)][10:]


def test_recommender_interface_with_given_candidates(backend, ml100k, ease_users):
    ease, users = ease_users
    cands = np.array([[10, 20, 30, 40, 50], [60, 70, 80, 90, 100]])
    ranker = LLMReranker(backend, weight=0.0, base=ease).fit(ml100k.interactions, ml100k.catalog)
    got = ranker.score(users, cands)
    assert got.shape == (2, 5)
    base = ease.score(users, cands)
    for row in range(2):
        assert np.argsort(-got[row], kind="stable").tolist() == np.argsort(-base[row], kind="stable").tolist()


def test_recommender_needs_a_base(backend):
    with pytest.raises(RuntimeError, match="base ranker"):
        LLMReranker(backend).score([UserContext(history=(1,))])
