"""`select_picks`: the one place where the list-level rule of an "X and Y" request is applied."""
from __future__ import annotations

import math

from agent.planner import select_picks
from retrieval.candidates.base import Candidate
from retrieval.catalog.schema import Item


def _cands(*genre_lists):
    return [Candidate(Item(item_id=str(n), title=f"t{n}", year=1990, genres=tuple(g)), 1.0 - n / 100)
            for n, g in enumerate(genre_lists)]


def _both(picks, genres=("Sci-Fi", "Action")):
    return sum(len(set(genres) & set(c.item.genres)) >= 2 for c in picks)


def test_blend_gets_half_its_picks_with_both_genres_in_rank_order():
    cands = _cands(["Sci-Fi"], ["Action"], ["Sci-Fi"], ["Action"], ["Sci-Fi"], ["Action"],
                   ["Sci-Fi", "Action"], ["Action"], ["Sci-Fi", "Action", "Thriller"], ["Sci-Fi", "Action"])
    picks = select_picks(cands, 5, ["Sci-Fi", "Action"], "blend")
    assert len(picks) == 5 and _both(picks) == math.ceil(5 / 2)
    ids = [int(c.item.item_id) for c in picks]
    assert ids == sorted(ids)  # the best-ranked one-genre picks stay, in rank order
    assert ids == [0, 1, 6, 8, 9]


def test_blend_takes_what_exists_when_too_few_have_both():
    cands = _cands(["Sci-Fi"], ["Action"], ["Sci-Fi"], ["Action"], ["Sci-Fi", "Action"], ["Action"])
    picks = select_picks(cands, 4, ["Sci-Fi", "Action"], "blend")
    assert len(picks) == 4 and _both(picks) == 1


def test_other_modes_keep_the_ranking():
    cands = _cands(["Sci-Fi"], ["Action"], ["Sci-Fi"], ["Sci-Fi", "Action"])
    for mode in ("any", "all"):
        assert select_picks(cands, 2, ["Sci-Fi", "Action"], mode) == cands[:2]
    assert select_picks(cands, 2, ["Sci-Fi"], "blend") == cands[:2]
