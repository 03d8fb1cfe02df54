"""Candidate building blocks without the vector store: RRF, MMR / long tail, a request's constraints,
collaborative and popularity generators on the real MovieLens-100k log."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval.candidates.base import Candidate, CandidateRequest
from retrieval.candidates.collaborative import CollaborativeGenerator
from retrieval.candidates.diversity import intra_list_similarity, long_tail_rerank, mmr
from retrieval.candidates.filtering import CatalogArrays, effective_constraints
from retrieval.candidates.fusion import reciprocal_rank_fusion
from retrieval.candidates.popularity import PopularityGenerator
from retrieval.catalog.schema import Item
from retrieval.constraints import Constraints


def _cands(ids, source, popularity=None):
    popularity = popularity or {}
    return [Candidate(item=Item(item_id=i, title=f"t{i}", popularity=popularity.get(i, 0)), score=10.0 - n,
                      sources={source: 10.0 - n}) for n, i in enumerate(ids)]


# --- reciprocal-rank fusion -----------------------------------------------------------------------
def test_rrf_scores_follow_the_formula_and_keep_source_scores():
    fused = reciprocal_rank_fusion({"a": _cands(["x", "y"], "a"), "b": _cands(["y", "z"], "b")},
                                   weights={"a": 1.0, "b": 2.0}, rrf_k=10)
    by_id = {c.item.item_id: c for c in fused}
    assert by_id["y"].score == pytest.approx(1 / 12 + 2 / 11)
    assert by_id["x"].score == pytest.approx(1 / 11)
    assert by_id["z"].score == pytest.approx(2 / 12)
    assert [c.item.item_id for c in fused] == ["y", "z", "x"]
    assert dict(by_id["y"].sources) == {"a": 9.0, "b": 10.0}


def test_rrf_weights_decide_between_disagreeing_lists():
    lists = {"sem": _cands(["s1", "s2"], "sem"), "pop": _cands(["p1", "p2"], "pop")}
    assert reciprocal_rank_fusion(lists, {"sem": 1.0, "pop": 0.3})[0].item.item_id == "s1"
    assert reciprocal_rank_fusion(lists, {"sem": 0.3, "pop": 1.0})[0].item.item_id == "p1"


def test_rrf_dedupes_within_and_across_lists_and_breaks_ties_by_id():
    fused = reciprocal_rank_fusion({"a": _cands(["b", "b", "a"], "a"), "c": _cands(["a", "b"], "c")}, {})
    ids = [c.item.item_id for c in fused]
    assert sorted(ids) == ["a", "b"] and len(ids) == len(set(ids))
    # "b": 1/61 + 1/62; "a": 1/62 (its duplicate-free rank in list a is 2) + 1/61 -> tie -> id order
    assert ids == ["a", "b"]
    with pytest.raises(ValueError, match="rrf_k"):
        reciprocal_rank_fusion({}, {}, rrf_k=-1)


# --- diversity -------------------------------------------------------------------------------------
def test_mmr_trades_relevance_for_diversity():
    rng = np.random.default_rng(0)
    centre_a, centre_b = rng.normal(size=16), rng.normal(size=16)
    # the six most relevant candidates are near-duplicates of one another; the rest form another cluster
    vecs = np.stack([centre_a + 0.05 * rng.normal(size=16) for _ in range(6)]
                    + [centre_b + 0.05 * rng.normal(size=16) for _ in range(6)])
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    cands = _cands([str(i) for i in range(12)], "s")
    plain = mmr(cands, vecs, 4, lam=1.0)
    diverse = mmr(cands, vecs, 4, lam=0.5)
    assert [c.item.item_id for c in plain] == ["0", "1", "2", "3"]
    assert diverse[0].item.item_id == "0"  # the most relevant item always stays first
    idx = lambda cs: [int(c.item.item_id) for c in cs]  # noqa: E731
    assert intra_list_similarity(vecs[idx(diverse)]) < intra_list_similarity(vecs[idx(plain)]) - 0.2
    assert len({c.item.item_id for c in diverse}) == 4
    with pytest.raises(ValueError, match="embeddings"):
        mmr(cands, vecs[:3], 4, lam=0.5)


def test_long_tail_knob_promotes_less_popular_items():
    ids = [str(i) for i in range(10)]
    popularity = {i: 1000 - 100 * n for n, i in enumerate(ids)}  # relevance and popularity aligned
    cands = _cands(ids, "s", popularity)
    assert long_tail_rerank(cands, 0.0) == cands
    mean_pop = lambda cs: np.mean([c.item.popularity for c in cs[:3]])  # noqa: E731
    assert mean_pop(long_tail_rerank(cands, 2.0)) < mean_pop(cands)
    assert sorted(c.item.item_id for c in long_tail_rerank(cands, 2.0)) == sorted(ids)


# --- constraints of a request (the rules themselves: tests/retrieval/test_constraints.py) ---------------
@pytest.fixture(scope="module")
def arrays(ml100k) -> CatalogArrays:
    return CatalogArrays(ml100k.catalog)


def test_effective_constraints_exclude_everything_the_user_knows():
    request = CandidateRequest(liked=("1",), disliked=("2",), history=("3",),
                               constraints=Constraints(exclude_ids=frozenset({"4"})))
    assert effective_constraints(request).exclude_ids == {"1", "2", "3", "4"}


# --- generators on the real log -------------------------------------------------------------------
@pytest.fixture(scope="module")
def collaborative(arrays, ml100k) -> CollaborativeGenerator:
    return CollaborativeGenerator(arrays).fit(ml100k.interactions, ml100k.catalog)


def test_cold_start_popularity_is_the_most_watched(arrays, ml100k):
    got = PopularityGenerator(arrays).generate(CandidateRequest(), 10)
    most_watched = sorted(ml100k.catalog, key=lambda it: (-it.popularity, ml100k.catalog.index_of(it.item_id)))[:10]
    assert [c.item.item_id for c in got] == [it.item_id for it in most_watched]


def test_liked_star_wars_gives_its_collaborative_neighbours(collaborative, ml100k):
    star_wars = "50"
    got = collaborative.generate(CandidateRequest(liked=(star_wars,)), 10)
    titles = [c.item.title for c in got]
    assert star_wars not in [c.item.item_id for c in got]
    assert {"Return of the Jedi", "The Empire Strikes Back"} <= set(titles)
    assert all(c.sources["collaborative"] > 0 for c in got)


def test_known_user_history_is_never_recommended_back(collaborative, ml100k):
    user = ml100k.interactions.user_ids[0]
    seen = {ml100k.catalog.at(int(i)).item_id
            for i in ml100k.interactions.items[ml100k.interactions.users == 0]}
    got = collaborative.generate(CandidateRequest(user_id=user), 50)
    assert len(got) == 50 and not seen & {c.item.item_id for c in got}


def test_dislike_pushes_neighbours_down(collaborative, ml100k):
    jedi, empire = "181", "172"  # disliking Return of the Jedi must demote its close neighbour Empire
    before = collaborative.scores(CandidateRequest(liked=("50",)))
    after = collaborative.scores(CandidateRequest(liked=("50",), disliked=(jedi,)))
    empire_at = ml100k.catalog.index_of(empire)
    assert after[empire_at] < before[empire_at]
    assert jedi not in {c.item.item_id for c in collaborative.generate(CandidateRequest(liked=("50",),
                                                                                       disliked=(jedi,)), 30)}


def test_collaborative_needs_evidence(collaborative):
    assert collaborative.generate(CandidateRequest(query="anything"), 10) == []
    assert collaborative.generate(CandidateRequest(user_id="no-such-user"), 10) == []
