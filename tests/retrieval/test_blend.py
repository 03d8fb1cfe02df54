"""The chat's blend (retrieval/candidates/blend.py) on hand-made signals, and the HybridRetriever's blend path on a
tiny catalog with fake generators: what each signal and weight does, exactly."""
from __future__ import annotations

import math

import numpy as np
import pytest

from retrieval.candidates.base import CandidateRequest
from retrieval.candidates.blend import Signals, blend, genre_share, standardised
from retrieval.candidates.hybrid import HybridRetriever
from retrieval.catalog.schema import Catalog, Item
from retrieval.config import CandidateConfig
from retrieval.constraints import Constraints

ITEMS = [Item("a", "Alien", 1979, ("Horror", "Sci-Fi"), popularity=50),
         Item("b", "Blade Runner", 1982, ("Sci-Fi",), popularity=40),
         Item("c", "Clueless", 1995, ("Comedy",), popularity=30),
         Item("d", "Dune", 1984, ("Sci-Fi",), popularity=20),
         Item("e", "Emma", 1996, ("Comedy", "Romance"), popularity=10),
         Item("f", "Next Friday", 1999, ("Comedy",), popularity=1)]


def _weights(**given) -> dict[str, float]:
    return {"collaborative": 0.0, "semantic": 0.0, "mood": 0.0, "popularity": 0.0, "anchor": 0.0, **given}


def test_standardised_is_a_z_score_over_the_allowed_items_only():
    values = np.array([1.0, 2.0, 3.0, 100.0])
    allowed = np.array([True, True, True, False])
    z = standardised(values, allowed)
    assert z[:3] == pytest.approx([-math.sqrt(1.5), 0.0, math.sqrt(1.5)])
    assert z[3] == 0.0  # the huge excluded value does not stretch the scale of the allowed ones
    assert not standardised(np.array([5.0, 5.0]), np.array([True, True])).any()  # a constant signal says nothing


def test_blend_is_the_weighted_sum_of_standardised_and_share_signals():
    allowed = np.array([True, True, True, False])
    signals = Signals(allowed=allowed, values={"semantic": np.array([3.0, 1.0, 2.0, 9.0]),
                                               "mood": np.array([0.0, 1.0, 0.0, 1.0]),
                                               "popularity": np.array([1.0, 2.0, 3.0, 4.0])})
    total, parts = blend(signals, _weights(semantic=1.0, mood=2.0, popularity=0.5))
    z_semantic = standardised(signals.values["semantic"], allowed)
    z_pop = standardised(signals.values["popularity"], allowed)
    expected = z_semantic + 2.0 * signals.values["mood"] + 0.5 * z_pop
    assert total[:3] == pytest.approx(expected[:3])
    assert total[3] == -np.inf  # not allowed: never ranked
    assert set(parts) == {"semantic", "mood", "popularity"}
    assert parts["mood"][:3] == pytest.approx([0.0, 2.0, 0.0])  # shares are not standardised
    assert sum(p[0] for p in parts.values()) == pytest.approx(total[0])  # the sources add up to the score


def test_popularity_is_the_cold_start_prior_only():
    allowed = np.ones(3, dtype=bool)
    popularity = np.array([9.0, 1.0, 5.0])
    cold = Signals(allowed=allowed, values={"semantic": np.array([0.0, 1.0, 0.5]), "popularity": popularity})
    warm = Signals(allowed=allowed, values={**cold.values, "collaborative": np.array([1.0, 2.0, 3.0])})
    weights = _weights(collaborative=1.0, semantic=0.1, popularity=1.0)
    assert np.argmax(blend(cold, weights)[0]) == 0  # no collaborative evidence: the popular item leads
    total, parts = blend(warm, weights)
    assert "popularity" not in parts and np.argmax(total) == 2  # the collaborative scores already carry it


def test_zero_weight_and_missing_signals_add_nothing():
    allowed = np.ones(3, dtype=bool)
    signals = Signals(allowed=allowed, values={"collaborative": np.array([1.0, 3.0, 2.0]),
                                               "semantic": np.array([9.0, 0.0, 0.0]),
                                               "popularity": np.array([3.0, 2.0, 1.0])})
    total, parts = blend(signals, _weights(collaborative=1.0, anchor=5.0))  # no liked titles: anchor is absent
    assert list(np.argsort(-total)) == [1, 2, 0]  # the collaborative order alone
    assert set(parts) == {"collaborative"}
    with pytest.raises(ValueError, match="unknown blend signal"):
        blend(signals, {"colaborative": 1.0})


def test_without_a_taste_signal_popularity_decides_even_at_weight_zero():
    allowed = np.array([True, False, True, True])
    signals = Signals(allowed=allowed, values={"popularity": np.array([1.0, 9.0, 3.0, 2.0])})
    assert not signals.taste
    total, parts = blend(signals, _weights(collaborative=1.0, semantic=1.0))
    assert list(np.argsort(-total)[:3]) == [2, 3, 0] and set(parts) == {"popularity"}


def test_genre_share_counts_the_liked_items_an_item_shares_a_genre_with():
    flags = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1]], dtype=bool)  # items × genres
    share = genre_share(flags, np.array([0, 2]))  # liked: item 0 (genres 0, 1) and item 2 (genre 2)
    assert share.tolist() == [0.5, 0.5, 0.5, 1.0]
    assert not genre_share(flags, np.array([], dtype=np.int64)).any()


# --- the retriever's blend path with fake generators -----------------------------------------------
class FakeCollaborative:
    """A fitted 'model' whose scores are given; one known user 'u' has seen Alien."""

    def __init__(self, scores):
        self._scores = np.asarray(scores, dtype=np.float64)
        self.histories = type("H", (), {"of": staticmethod(lambda uid: (0,) if uid == "u" else ())})()
        self.requests = []

    def knows_user(self, user_id):
        return user_id == "u"

    def scores(self, request, within=None):  # `within` (the in-genre history) is ignored: the same scores
        self.requests.append(request)
        return self._scores.copy() if request.user_id == "u" or request.liked else None


class FakeSemantic:
    """Similarity = 1 for items whose title contains a word of the text (a caricature of title matching)."""

    def __init__(self, catalog):
        self.catalog = catalog
        self.texts = []

    def similarities(self, text):
        self.texts.append(text)
        words = set(text.lower().split())
        return np.array([float(bool(words & set(it.title.lower().split()))) for it in self.catalog])


@pytest.fixture
def catalog():
    return Catalog(ITEMS, name="tiny")


def _retriever(catalog, model=None, **weights) -> HybridRetriever:
    config = CandidateConfig(blend=_weights(**weights))
    return HybridRetriever(catalog, config, semantic=FakeSemantic(catalog), collaborative=model)


def test_known_user_genre_request_is_the_collaborative_order_among_the_allowed(catalog):
    collaborative = FakeCollaborative([9.0, 1.0, 8.0, 5.0, 7.0, 0.0])
    retriever = _retriever(catalog, collaborative, collaborative=1.0)
    scifi = CandidateRequest(query="sci-fi movies", words="", user_id="u",
                             constraints=Constraints(include_genres=frozenset({"Sci-Fi"})))
    out = retriever.generate(scifi, 5)
    assert [c.item.item_id for c in out] == ["d", "b"]  # Alien is seen; then by collaborative score
    assert all(set(c.sources) == {"collaborative"} for c in out)


def test_chit_chat_without_user_ranks_by_popularity_not_by_title_words(catalog):
    retriever = _retriever(catalog, FakeCollaborative(np.zeros(6)), collaborative=1.0, semantic=1.0, popularity=0.2)
    # the chat's planner passes the user's own words: none survive in "what should I watch next?"
    chat = retriever.generate(CandidateRequest(query="what should I watch next?", words=""), 6)
    assert [c.item.item_id for c in chat] == ["a", "b", "c", "d", "e", "f"]  # popularity order
    assert retriever.semantic.texts == []  # no words, no semantic signal
    # raw text (`marquee search`) is the content itself: then the title word does count
    raw = retriever.generate(CandidateRequest(query="next friday"), 1)
    assert raw[0].item.item_id == "f" and raw[0].sources["semantic"] > 0


def test_mood_and_anchor_move_items_within_the_constraints(catalog):
    collaborative = FakeCollaborative([0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    mood = _retriever(catalog, collaborative, popularity=0.1, mood=1.0)
    romantic = mood.generate(CandidateRequest(mood_genres=frozenset({"Romance"})), 3)
    assert romantic[0].item.item_id == "e" and romantic[0].sources["mood"] == 1.0  # the least popular, but romantic
    anchor = _retriever(catalog, collaborative, popularity=0.1, anchor=1.0)
    like_clueless = anchor.generate(CandidateRequest(liked=("c",)), 3)
    assert [c.item.item_id for c in like_clueless] == ["e", "f", "a"]  # comedies first, then the most popular


def test_dislikes_and_history_are_never_returned(catalog):
    retriever = _retriever(catalog, FakeCollaborative([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), collaborative=1.0)
    out = retriever.generate(CandidateRequest(user_id="u", disliked=("f",), liked=("e",)), 6)
    assert {c.item.item_id for c in out} == {"b", "c", "d"}
    assert collaborative_request(retriever).history == ("a",)  # the known user's logged history, resolved


def collaborative_request(retriever) -> CandidateRequest:
    return retriever.collaborative.requests[-1]
