"""The blend's in-genre history signal (`genre_collaborative`, retrieval/candidates/blend.py): the collaborative
model scored on the part of a known user's history having a genre the request names. Real models (EASE, item-kNN)
on a tiny log whose co-watching is known by construction."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval.candidates.base import CandidateRequest
from retrieval.candidates.collaborative import CollaborativeGenerator
from retrieval.candidates.filtering import CatalogArrays
from retrieval.candidates.hybrid import HybridRetriever
from retrieval.catalog.schema import Catalog, Interactions, Item
from retrieval.config import CandidateConfig
from retrieval.constraints import Constraints

# 0-3 are science fiction, 4-7 comedies. Item 3 is the sci-fi film the comedy crowd watches; item 2 the one the
# people who watched item 0 go on to.
ITEMS = [Item("0", "Solaris", 1972, ("Sci-Fi",)), Item("1", "Stalker", 1979, ("Sci-Fi",)),
         Item("2", "Gattaca", 1997, ("Sci-Fi",)), Item("3", "Spaceballs", 1987, ("Sci-Fi", "Comedy")),
         Item("4", "Airplane!", 1980, ("Comedy",)), Item("5", "Big", 1988, ("Comedy",)),
         Item("6", "Clue", 1985, ("Comedy",)), Item("7", "Dave", 1993, ("Comedy",))]
LOG = {"me": [0, 4, 5],  # one sci-fi film, two comedies
       **{f"comedy{n}": [4, 5, 3, 6] for n in range(6)},  # the comedies point to item 3
       **{f"scifi{n}": [0, 2] for n in range(3)},  # item 0 points to item 2
       "other": [1, 7]}
SCIFI = Constraints(include_genres=frozenset({"Sci-Fi"}))


def _interactions() -> Interactions:
    users, items = [], []
    for u, seq in enumerate(LOG.values()):
        users += [u] * len(seq)
        items += seq
    return Interactions(user_ids=tuple(LOG), users=np.asarray(users, np.int32), items=np.asarray(items, np.int32),
                        ratings=np.ones(len(items), np.float32), timestamps=np.arange(len(items), dtype=np.int64))


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(ITEMS, name="tiny-genres")


@pytest.fixture(scope="module")
def collaborative(catalog, tmp_path_factory) -> CollaborativeGenerator:
    generator = CollaborativeGenerator(CatalogArrays(catalog), model="ease", home=tmp_path_factory.mktemp("home"))
    return generator.fit(_interactions(), catalog)


def _retriever(catalog, collaborative, in_genre: float) -> HybridRetriever:
    weights = {"collaborative": 1.0, "genre_collaborative": in_genre, "semantic": 0.0, "mood": 0.0,
               "popularity": 0.0, "anchor": 0.0}
    return HybridRetriever(catalog, CandidateConfig(blend=weights), collaborative=collaborative)


def _ids(candidates) -> list[str]:
    return [c.item.item_id for c in candidates]


def test_the_in_genre_history_is_scored_alone(collaborative, catalog):
    whole = collaborative.scores(CandidateRequest(user_id="me"))
    scifi = np.array(["Sci-Fi" in it.genres for it in catalog])
    in_genre = collaborative.scores(CandidateRequest(user_id="me"), within=scifi)
    assert whole[3] > whole[2]  # the two comedies of the history outweigh the one sci-fi film
    assert in_genre[2] > in_genre[3]  # the sci-fi film alone points to item 2
    nothing = collaborative.scores(CandidateRequest(user_id="me"), within=np.zeros(len(catalog), dtype=bool))
    assert nothing is None  # no marked evidence: no signal


def test_an_item_only_the_in_genre_history_points_to_moves_up(collaborative, catalog):
    request = CandidateRequest(user_id="me", constraints=SCIFI)
    assert _ids(_retriever(catalog, collaborative, 0.0).generate(request, 3))[0] == "3"  # the whole history's pick
    picks = _retriever(catalog, collaborative, 3.0).generate(request, 3)
    assert _ids(picks)[0] == "2" and picks[0].sources["genre_collaborative"] > 0
    mood = CandidateRequest(user_id="me", mood_genres=frozenset({"Sci-Fi"}))  # a soft wish names a genre too
    assert "genre_collaborative" in _retriever(catalog, collaborative, 3.0).signals(mood).values


def test_no_genre_or_no_in_genre_history_means_no_signal(collaborative, catalog):
    retriever = _retriever(catalog, collaborative, 3.0)
    assert "genre_collaborative" not in retriever.signals(CandidateRequest(user_id="me")).values
    westerns = CandidateRequest(user_id="me", constraints=Constraints(include_genres=frozenset({"Western"})))
    assert "genre_collaborative" not in retriever.signals(westerns).values  # nothing of the genre in the history
    assert "genre_collaborative" not in retriever.signals(CandidateRequest(constraints=SCIFI)).values  # no user
    off = _retriever(catalog, collaborative, 0.0).signals(CandidateRequest(user_id="me", constraints=SCIFI))
    assert "genre_collaborative" not in off.values  # weight 0: the second model pass is skipped
    vague = _retriever(catalog, collaborative, 3.0).generate(CandidateRequest(user_id="me"), 3)
    assert vague and all("genre_collaborative" not in c.sources for c in vague)


def test_it_never_overrides_a_hard_constraint(collaborative, catalog):
    # item 2 (1997) is what the in-genre history wants most; the request allows only films before 1990
    before_1990 = Constraints(include_genres=frozenset({"Sci-Fi"}), year_max=1989)
    picks = _retriever(catalog, collaborative, 100.0).generate(CandidateRequest(user_id="me", constraints=before_1990), 5)
    assert picks and "2" not in _ids(picks)
    assert all(before_1990.allows(c.item) for c in picks)
    assert not {"0", "4", "5"} & set(_ids(picks))  # nor is the history recommended back
