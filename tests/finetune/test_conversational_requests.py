"""Requests of the conversational benchmark: written from the target, never naming it, deterministic."""
from __future__ import annotations

import re

import numpy as np
import pytest

from finetune.data.splits import leave_one_out
from finetune.evaluation.conversational.isolation import target_rows, visible_histories, visible_interactions
from finetune.evaluation.conversational.requests import (
    BenchUser,
    RequestWriter,
    bench_users,
    decade_words,
    has_ratings,
    names_title,
    phrasings,
    spoken_title,
)
from retrieval.catalog.schema import Catalog, Item
from retrieval.config.conversational import REQUEST_TYPES


@pytest.fixture(scope="module", params=["test", "validation"])
def ml100k_people(ml100k, request):
    """Every user at each stage: test = the last film, seen after train + validation; validation = the one before."""
    split = leave_one_out(ml100k.interactions)
    users = split.evaluated_users
    visible = visible_interactions(split, request.param)
    targets = [int(split.interactions.items[target_rows(split, request.param)[u]]) for u in users]
    people = bench_users(visible, visible_histories(split, request.param, users), users, targets)
    assert all(p.target not in p.history for p in people)  # ML-100k has no repeated ratings
    return split, visible, people


@pytest.fixture(scope="module")
def all_requests(ml100k, ml100k_people):
    _, visible, people = ml100k_people
    return RequestWriter(ml100k.catalog, seed=0, rated=has_ratings(visible)).write(people)


def test_no_request_names_its_target_on_all_of_ml100k(ml100k, all_requests):
    catalog = ml100k.catalog
    assert len(all_requests.requests) > 4 * 943
    for request in all_requests.requests:
        target = catalog.at(request.target)
        assert not names_title(request.text, target), request
        assert target.title.casefold() not in request.text.casefold() or len(target.title) <= 4, request


def test_attributes_follow_the_target_and_the_target_satisfies_them(ml100k, ml100k_people, all_requests):
    catalog = ml100k.catalog
    _, _, people = ml100k_people
    by_user = {p.user_id: p for p in people}
    seen_types = set()
    for r in all_requests.requests:
        target, a = catalog.at(r.target), r.attributes
        seen_types.add(r.type)
        assert a.allows(target), r  # the oracle filter never removes the target
        if r.type == "vague":
            assert not a.constrained
        elif r.type in ("genre", "genre-zh"):
            assert len(a.genres) == 1 and a.genres <= set(target.genres) and a.year_min is None
        elif r.type == "genre-decade":
            assert len(a.genres) == 1 and a.genres <= set(target.genres)
            assert a.year_min % 10 == 0 and a.year_max == a.year_min + 9 and a.year_min <= target.year <= a.year_max
            assert decade_words(target.year)[0] in r.text or decade_words(target.year)[1] in r.text
        else:  # loved: X is a highly rated film of the user's visible history sharing a genre with the target
            person = by_user[r.user_id]
            liked = catalog[a.anchor]
            index = catalog.index_of(a.anchor)
            assert index in person.history and index != r.target
            assert person.ratings[person.history.index(index)] >= 4
            assert a.genres == frozenset(liked.genres) and a.genres & set(target.genres)
            assert spoken_title(liked.title) in r.text
    assert seen_types == set(REQUEST_TYPES)


def test_genre_types_ask_for_the_same_genre_and_chinese_uses_chinese_words(ml100k, all_requests):
    zh_words = phrasings()["genre_words_zh"]
    by_user: dict[str, dict[str, object]] = {}
    for r in all_requests.requests:
        by_user.setdefault(r.user_id, {})[r.type] = r
    checked = 0
    for requests in by_user.values():
        zh = requests.get("genre-zh")
        if zh is None:
            continue
        (genre,) = zh.attributes.genres
        assert zh_words[genre] in zh.text
        assert not re.search(r"[A-Za-z]", zh.text)  # no English genre (or other) words
        assert requests["genre"].attributes.genres == zh.attributes.genres
        checked += 1
    assert checked > 900


def test_deterministic_and_independent_of_the_rest_of_the_run(ml100k, ml100k_people):
    _, visible, people = ml100k_people
    writer = RequestWriter(ml100k.catalog, seed=3)
    first = writer.write(people[:40])
    assert first.requests == RequestWriter(ml100k.catalog, seed=3).write(people[:40]).requests
    # fewer users and fewer types: the remaining requests are the same ones
    subset = writer.write(people[10:20], types=["loved", "genre"]).requests
    expected = [r for r in first.requests if r.user_id in {p.user_id for p in people[10:20]} and r.type in ("loved", "genre")]
    assert sorted(subset, key=lambda r: (r.user_id, r.type)) == sorted(expected, key=lambda r: (r.user_id, r.type))
    other = RequestWriter(ml100k.catalog, seed=4).write(people[:40]).requests
    assert [r.text for r in other] != [r.text for r in first.requests]


def test_phrasings_vary_within_a_type(all_requests):
    for kind in REQUEST_TYPES:
        texts = {r.text for r in all_requests.of_type(kind)}
        assert len(texts) >= 4, kind


def _catalog(*items: Item) -> Catalog:
    return Catalog(items, name="hand")


def _user(history, ratings, target, user=0) -> BenchUser:
    return BenchUser(user=user, user_id=str(user), history=tuple(history), ratings=tuple(ratings), target=target)


def test_a_title_in_every_phrasing_skips_the_user_and_counts_it():
    catalog = _catalog(Item("1", "Comedy", 1994, ("Comedy",)), Item("2", "Other", 1990, ("Comedy",)))
    result = RequestWriter(catalog, seed=0).write([_user([1], [5.0], 0)])
    assert {r.type for r in result.requests} == {"vague", "loved", "genre-zh"}
    assert result.skipped["genre"] == {"every phrasing contains the target's title": 1}
    assert result.skipped["genre-decade"] == {"every phrasing contains the target's title": 1}


def test_a_phrasing_that_names_the_target_is_replaced_by_another():
    catalog = _catalog(Item("1", "Mood", 1994, ("Drama",)))
    texts = {RequestWriter(catalog, seed=s).request(_user([], [], 0), "genre").text for s in range(40)}
    assert len(texts) == 3 and not any("mood" in t.casefold() for t in texts)


def test_loved_needs_a_highly_rated_history_film_sharing_a_genre():
    catalog = _catalog(Item("1", "Target", 1994, ("Sci-Fi",)), Item("2", "Alien", 1979, ("Sci-Fi", "Horror")),
                       Item("3", "Clueless", 1995, ("Comedy",)), Item("4", "Target Two", 1996, ("Sci-Fi",)))
    writer = RequestWriter(catalog, seed=0)
    assert writer.request(_user([1, 2], [3.0, 5.0], 0), "loved") == \
        "no highly rated history film sharing a genre with the target"  # Alien rated 3, Clueless no genre shared
    loved = writer.request(_user([1, 2], [4.0, 5.0], 0), "loved")
    assert loved.attributes.anchor == "2" and "Alien" in loved.text
    # a film whose title contains the target's is never the one named
    assert isinstance(writer.request(_user([3], [5.0], 0), "loved"), str)
    implicit = RequestWriter(catalog, seed=0, rated=False)  # an implicit log: every history film counts as liked
    assert implicit.request(_user([1], [1.0], 0), "loved").attributes.anchor == "2"


def test_missing_year_or_genre_skips_only_the_types_that_need_it():
    catalog = _catalog(Item("1", "Nameless", None, ()), Item("2", "Dated", None, ("Drama",)))
    result = RequestWriter(catalog).write([_user([], [], 0), _user([], [], 1, user=1)])
    assert result.skipped["genre"] == {"target has no genre": 1}
    assert result.skipped["genre-decade"] == {"target has no genre": 1, "target has no year": 1}
    assert len(result.of_type("vague")) == 2


def test_helpers():
    assert spoken_title("Horseman on the Roof, The (Hussard sur le toit, Le)") == "The Horseman on the Roof"
    assert spoken_title("Seven (Se7en)") == "Seven" and spoken_title("Toy Story") == "Toy Story"
    assert decade_words(1984) == ("80s", "1980s") and decade_words(2003) == ("2000s", "2000s")
    assert names_title("I loved heat, really", Item("1", "Heat")) and not names_title("Heathers", Item("1", "Heat"))
    with pytest.raises(ValueError, match="unknown request type"):
        RequestWriter(_catalog(Item("1", "A"))).write([], types=["gossip"])
    assert has_ratings(_log(np.array([1.0, 5.0]))) and not has_ratings(_log(np.ones(2)))


def _log(ratings: np.ndarray):
    from retrieval.catalog.schema import Interactions

    n = len(ratings)
    return Interactions(user_ids=("u",), users=np.zeros(n, np.int32), items=np.arange(n, dtype=np.int32),
                        ratings=ratings.astype(np.float32), timestamps=np.arange(n, dtype=np.int64))
