"""Log statistics behind each pick's evidence (retrieval/evidence.py): exact counts, support thresholds, ranks."""
from __future__ import annotations

import math

import numpy as np
import pytest

from retrieval.catalog.schema import Catalog, Interactions, Item
from retrieval.evidence import (MIN_FANS, MIN_OVERLAP, CatalogStats, Connection, Evidence, LogEvidence, Satisfied,
                                SharedGenres, numbers_in, signals_of, wilson_lower_bound)


@pytest.fixture(scope="module")
def log(ml100k):
    return LogEvidence(ml100k.catalog, ml100k.interactions)


def _index(catalog, label):
    return catalog.index_of(next(it.item_id for it in catalog if it.label == label))


def _fans(interactions, item: int, loved: bool) -> set[int]:
    rows = interactions.items == item
    if loved:
        rows &= interactions.ratings >= 4
    return set(interactions.users[rows].tolist())


def test_connection_counts_are_the_logs(ml100k, log):
    cat, inter = ml100k.catalog, ml100k.interactions
    heat = _index(cat, "Heat (1995)")
    picks = [_index(cat, label) for label in ("Twelve Monkeys (1995)", "Fargo (1996)", "The Rock (1996)")]
    found = log.connections(picks, [(heat, "liked")])
    fans = _fans(inter, heat, loved=True)
    everyone = inter.n_users
    for pick, connections in zip(picks, found):
        (c,) = connections
        also = fans & _fans(inter, pick, loved=True)
        assert (c.item_id, c.title, c.relation, c.measure) == (cat.at(heat).item_id, "Heat (1995)", "liked", "loved")
        assert (c.fans, c.also) == (len(fans), len(also))
        assert c.percent == round(100 * len(also) / len(fans))
        assert c.lift == round((len(also) / len(fans)) / (len(_fans(inter, pick, loved=True)) / everyone), 1)
        assert c.strength == pytest.approx(float(wilson_lower_bound(len(also), len(fans))), abs=1e-4)


def test_small_counts_never_make_a_connection(ml100k, log):
    cat = ml100k.catalog
    rare = [i for i in range(len(cat)) if 0 < log.fans[i] < MIN_FANS][:20]
    popular = [_index(cat, "Star Wars (1977)"), _index(cat, "Fargo (1996)")]
    assert log.connections(popular, [(r, "liked") for r in rare]) == [[], []]  # too few fans of the source
    for connections in log.connections(list(range(200)), [(_index(cat, "Star Wars (1977)"), "anchor")]):
        assert all(c.also >= MIN_OVERLAP and c.fans >= MIN_FANS for c in connections)
    star_wars = _index(cat, "Star Wars (1977)")
    assert log.connections([star_wars], [(star_wars, "anchor")]) == [[]]  # never connected to itself


def test_a_film_the_catalog_lists_twice_is_named_once(ml100k, log):
    """MovieLens-100k lists some films under two ids; both entries as sources read as one film with two sets of
    figures ("Chasing Amy (1997): 43 of its 171 fans … / Chasing Amy (1997): 36 of its 91 fans …"), and the pick's
    own second entry as a film the viewer liked."""
    cat = ml100k.catalog
    twice = {}
    for i in range(len(cat)):
        twice.setdefault(cat.at(i).label, []).append(i)
    pairs = [ids for ids in twice.values() if len(ids) == 2 and all(log.fans[i] >= MIN_FANS for i in ids)]
    assert pairs, "the catalog lists no popular film twice: pick another duplicate"
    first, second = pairs[0]
    pick = _index(cat, "Fargo (1996)")
    found = log.connections([pick], [(first, "liked"), (second, "liked"), (_index(cat, "Heat (1995)"), "liked")])[0]
    labels = [c.title for c in found]
    assert len(labels) == len(set(labels)) and cat.at(first).label in labels
    (own,) = log.connections([first], [(second, "liked"), (pick, "liked")])
    assert [c.title for c in own] == ["Fargo (1996)"]  # never the pick's own other entry


def test_anchors_lead_then_liked_then_history(ml100k, log):
    cat = ml100k.catalog
    pick = _index(cat, "Return of the Jedi (1983)")
    sources = [(_index(cat, "Toy Story (1995)"), "history"), (_index(cat, "Fargo (1996)"), "liked"),
               (_index(cat, "Star Wars (1977)"), "history"), (_index(cat, "Heat (1995)"), "anchor")]
    (found,) = log.connections([pick], sources)
    assert [c.relation for c in found] == ["anchor", "liked", "history", "history"]
    history = [c for c in found if c.relation == "history"]
    assert history[0].strength >= history[1].strength


def test_a_users_loved_titles(ml100k, log):
    inter = ml100k.interactions
    user = inter.user_ids.index("196")
    rows = (inter.users == user) & (inter.ratings >= 4)
    assert set(log.loved_by("196")) == set(inter.items[rows].tolist())
    assert log.loved_by("no-such-user") == () and log.loved_by(None) == ()


def test_catalog_standing(ml100k, log):
    cat, inter = ml100k.catalog, ml100k.interactions
    star_wars = _index(cat, "Star Wars (1977)")
    stats = log.stats(star_wars)
    ratings = inter.ratings[inter.items == star_wars]
    assert stats.rating_mean == round(float(ratings.mean()), 1) and stats.rating_count == len(ratings)
    assert stats.rating_scale == 5 and stats.catalog_size == len(cat)
    viewers = np.bincount(inter.items, minlength=len(cat))
    assert stats.popularity_rank == 1 and stats.viewers == viewers.max()
    some = _index(cat, "Heat (1995)")
    heat = log.stats(some)
    assert heat.popularity_rank == 1 + int((viewers > viewers[some]).sum())
    assert heat.top_percent == math.ceil(100 * heat.popularity_rank / len(cat))


def test_a_log_without_ratings_counts_viewers():
    items = [Item(str(i), f"Film {i}", 1990 + i, ("Drama",)) for i in range(3)]
    users, films = [], []
    for u in range(40):
        for f in (0, 1) if u < 30 else (0,):
            users.append(u)
            films.append(f)
    log = LogEvidence(Catalog(items), Interactions(tuple(str(u) for u in range(40)), np.array(users, np.int32),
                                                   np.array(films, np.int32), np.ones(len(users), np.float32),
                                                   np.zeros(len(users), np.int64)))
    (c,), = log.connections([1], [(0, "liked")])
    assert (c.measure, c.fans, c.also, c.percent) == ("watched", 40, 30, 75)
    assert log.stats(1).rating_mean is None and log.stats(1).rating_scale is None and log.stats(0).viewers == 40


def test_evidence_is_typed_serialisable_and_lists_what_it_may_cite():
    ev = Evidence(item_id="1",
                  connections=[Connection(item_id="9", title="Heat (1995)", relation="anchor", measure="loved", fans=1180,
                                          also=732, percent=62, lift=3.2, strength=0.6)],
                  shared_genres=[SharedGenres(item_id="9", title="Heat (1995)", genres=["Crime"])],
                  satisfies=Satisfied(genres=["Crime"], asked_genres=1, year_min=1990, year_max=1999),
                  catalog=CatalogStats(rating_mean=4.0, rating_count=583, rating_scale=5, viewers=583,
                                       popularity_rank=1, catalog_size=1682, top_percent=1),
                  signals=signals_of({"semantic": 0.2, "collaborative": 0.7}.items()))
    assert Evidence.model_validate_json(ev.model_dump_json()) == ev
    assert [s.name for s in ev.signals] == ["collaborative", "semantic"]
    assert ev.titles() == [("9", "Heat (1995)")]
    assert {"1180", "732", "62", "3.2", "1990", "1999", "4", "583", "5", "1", "1682"} <= ev.numbers()
    assert numbers_in("Liked by 62% of the 1,180 fans; 4.0/5; 排第1，共1,682部; ID4") == {"62", "1180", "4", "5", "1",
                                                                                          "1682"}
