"""Multi-turn state rules: accumulation, replacement, relative years, ordinals, reset, constraints."""
from __future__ import annotations

import statistics

from agent.planner import Profile, build_request, guard, query_text
from agent.session import SessionState
from retrieval.candidates.base import Candidate
from retrieval.constraints import Constraints


def _state(parser, catalog, *messages) -> SessionState:
    state = SessionState(session_id="s")
    for message in messages:
        state.apply(parser.parse(message), catalog)
    return state


def _ids(catalog, *titles):
    by_title = {it.title: it.item_id for it in catalog}
    return [by_title[t] for t in titles]


def test_refinements_accumulate(parser, catalog):
    state = _state(parser, catalog, "sci-fi and action films", "from the 80s", "no war films", "I've seen Aliens")
    assert state.genres == ["Sci-Fi", "Action"]
    assert (state.year_min, state.year_max) == (1980, 1989)
    assert state.exclude_genres == ["War"]
    assert state.seen == _ids(catalog, "Aliens")
    c = state.constraints()
    assert c.include_genres == {"Sci-Fi", "Action"} and c.exclude_genres == {"War"}
    assert set(_ids(catalog, "Aliens")) <= c.exclude_ids


def test_new_genres_replace_unless_additive(parser, catalog):
    assert _state(parser, catalog, "action", "comedies").genres == ["Comedy"]
    assert _state(parser, catalog, "action", "also comedies").genres == ["Action", "Comedy"]


def test_latest_word_wins_between_wanted_and_excluded(parser, catalog):
    state = _state(parser, catalog, "no horror", "ok, horror after all")
    assert state.genres == ["Horror"] and state.exclude_genres == []
    state = _state(parser, catalog, "horror and comedy", "no horror")
    assert state.genres == ["Comedy"] and state.exclude_genres == ["Horror"]


def test_older_moves_before_the_last_shown_items(parser, catalog):
    state = _state(parser, catalog, "sci-fi")
    shown = _ids(catalog, "Star Wars", "Contact", "Independence Day (ID4)", "Men in Black")
    state.record_shown(shown)
    state.apply(parser.parse("something older"), catalog)
    oldest = min(catalog[i].year for i in shown)
    assert state.year_max == oldest - 1 and state.year_min is None


def test_older_falls_back_to_the_median_when_too_few_items_remain(parser, catalog):
    state = _state(parser, catalog, "film noir")
    shown = [it.item_id for it in catalog if "Film-Noir" in it.genres and it.year and it.year <= 1945][:3]
    shown += _ids(catalog, "L.A. Confidential")
    state.record_shown(shown)
    state.apply(parser.parse("older"), catalog, needed=5)
    years = [catalog[i].year for i in shown]
    assert state.year_max == int(statistics.median(years)) - 1


def test_newer_moves_after_the_last_shown_items(parser, catalog):
    state = _state(parser, catalog, "westerns before 1960")
    shown = [it.item_id for it in catalog if "Western" in it.genres and it.year and it.year < 1960][:5]
    state.record_shown(shown)
    state.apply(parser.parse("newer"), catalog)
    assert state.year_min == max(catalog[i].year for i in shown) + 1 and state.year_max is None


def test_ordinals_refer_to_the_last_list(parser, catalog):
    state = _state(parser, catalog, "comedies")
    shown = _ids(catalog, "Fargo", "Clerks", "Heathers")
    state.record_shown(shown)
    delta = parser.parse("more like the second one")
    notes = state.apply(delta, catalog)
    assert notes == [] and state.liked == [shown[1]]
    assert [t.title for t in delta.titles] == [catalog[shown[1]].label]  # the summary names the title
    state.apply(parser.parse("not that one"), catalog)  # "that one" = the one just discussed
    assert state.disliked == [shown[1]] and state.liked == []
    state.apply(parser.parse("I've seen the last one"), catalog)
    assert state.seen == [shown[2]]


def test_ordinal_without_a_list_gives_a_note(parser, catalog):
    state = SessionState(session_id="s")
    notes = state.apply(parser.parse("more like the third one"), catalog)
    assert notes and state.liked == []


def test_reset_forgets_everything_but_the_user(parser, catalog):
    state = _state(parser, catalog, "I am user 7", "horror from the 80s, no comedy", "I loved Alien")
    state.record_shown(_ids(catalog, "Fargo"))
    state.apply(parser.parse("start over"), catalog)
    assert state.user_id == "7"
    assert state.genres == state.exclude_genres == state.liked == state.shown == []
    assert state.year_min is None and state.turns == 0


def test_shown_items_are_excluded_unless_relaxed(parser, catalog):
    state = _state(parser, catalog, "comedies")
    state.record_shown(_ids(catalog, "Fargo"))
    assert set(_ids(catalog, "Fargo")) <= state.constraints().exclude_ids
    assert not set(_ids(catalog, "Fargo")) & state.constraints(exclude_shown=False).exclude_ids


def test_request_merges_stored_profile(parser, catalog):
    state = _state(parser, catalog, "I loved Alien, no war")
    profile = Profile(liked=tuple(_ids(catalog, "Fargo")), disliked=tuple(_ids(catalog, "Titanic")),
                      seen=tuple(_ids(catalog, "Clerks")))
    request = build_request(state, profile, exclude_shown=True)
    assert set(request.liked) == set(_ids(catalog, "Alien", "Fargo"))
    assert set(_ids(catalog, "Titanic", "Clerks", "Alien")) <= request.constraints.exclude_ids
    assert request.constraints.exclude_genres == {"War"}


def test_query_text_uses_words_genres_and_moods(parser, catalog):
    state = _state(parser, catalog, "feel-good movies about robots")
    text = query_text(state)
    assert "robots" in text and "Comedy" in text
    assert query_text(SessionState(session_id="x")) == ""


def test_guard_drops_anything_invalid(catalog):
    items = list(catalog)[:6]
    fake = items[0].with_(item_id="not-in-catalog")
    cands = [Candidate(items[0], 1.0), Candidate(items[0], 0.9), Candidate(fake, 0.8)] + \
            [Candidate(it, 0.5) for it in items[1:]]
    c = Constraints(exclude_ids=frozenset({items[1].item_id}))
    kept = guard(cands, catalog, c, count=3)
    ids = [k.item.item_id for k in kept]
    assert len(ids) == len(set(ids)) == 3
    assert "not-in-catalog" not in ids and items[1].item_id not in ids
