"""The grounding post-check: genres, years / decades and titles must be true of the item or asked for."""
from __future__ import annotations

import pytest

from agent.llm.explainer import asked_genres, finish_text
from agent.llm.grounding import GroundingChecker
from retrieval.evidence import CatalogStats, Connection, Evidence


@pytest.fixture(scope="module")
def checker(catalog):
    return GroundingChecker(catalog)


@pytest.fixture(scope="module")
def star_wars(catalog):
    return catalog["50"]  # Star Wars (1977): Action, Adventure, Romance, Sci-Fi, War


@pytest.fixture(scope="module")
def toy_story(catalog):
    return catalog["1"]  # Toy Story (1995): Animation, Children's, Comedy


@pytest.mark.parametrize("text", [
    "Star Wars is a sci-fi adventure with plenty of action and a touch of romance.",
    "A 1977 space epic from the seventies.",
    "A classic from the 1970s that fans of war stories will enjoy.",
    "This is an exciting film with memorable characters.",
])
def test_true_claims_pass(checker, star_wars, text):
    assert checker.check(text, star_wars).ok, checker.check(text, star_wars).problems


@pytest.mark.parametrize("text, problem", [
    ("Star Wars is a chilling horror film.", "genre 'horror'"),
    ("A romantic comedy you will love.", "genre 'comedy'"),
    ("An animated adventure.", "genre 'animation'"),
    ("A 1982 blockbuster.", "year 1982"),
    ("A gem of the eighties.", "decade 1980s"),
    ("Great if you loved the '90s.", "decade 1990s"),
    ("If you enjoyed Toy Story you will love it.", "another catalog title"),
    ("Much like The Empire Strikes Back, it soars.", "another catalog title"),
])
def test_false_claims_are_caught(checker, star_wars, text, problem):
    verdict = checker.check(text, star_wars)
    assert not verdict.ok and any(problem in p for p in verdict.problems), verdict.problems


def test_what_the_user_asked_for_may_be_mentioned(checker, toy_story, catalog):
    text = "Not a thriller, but the light 1990s comedy you asked for, close to The Terminator (1984) in pace."
    assert not checker.check(text, toy_story).ok
    verdict = checker.check(text, toy_story, allowed_text="a thriller or comedy from the 1990s",
                            allowed_items=[catalog["195"]])  # The Terminator (1984), a title the user liked
    assert verdict.ok, verdict.problems


def test_common_words_are_not_mistaken_for_titles(checker, toy_story):
    # "heat" and "alien" are single-word catalog titles, but lower-case words here
    assert checker.check("It brings the heat of a child's alien adventure of toys.", toy_story).problems == (
        "genre 'adventure' is not a genre of Toy Story (1995)",)


def test_finish_text_enforces_the_budget():
    assert finish_text("It is fun. It is short. And a third.", True, 200, 2) == "It is fun. It is short."
    assert finish_text("A complete sentence. And a cut", False, 200, 2) == "A complete sentence."
    assert finish_text("a cut-off fragment without end", False, 200, 2) is None
    assert finish_text("It is fun. It is fun. It is short.", True, 200, 2) == "It is fun. It is short."
    reworded = ("You might enjoy Return of the Jedi because it's a movie about a young Jedi who's fighting the "
                "forces of darkness. The movie is about a young Jedi who's fighting the forces of darkness.")
    assert finish_text(reworded, True, 300, 2) == reworded.split(". ")[0] + "."
    assert finish_text("x" * 300 + ".", True, 200, 2) is None
    assert finish_text('"Quoted and fine"', True, 200, 2) == "Quoted and fine."


def test_a_request_names_the_wished_genres(checker, catalog):
    assert asked_genres("something funny, maybe a comedy or a sci-fi film", checker, catalog.genres()) == [
        "Comedy", "Sci-Fi"]
    assert asked_genres("", checker, catalog.genres()) == []


def test_with_evidence_every_number_must_be_the_evidences(checker, catalog):
    heat, pick = next(it for it in catalog if it.label == "Heat (1995)"), catalog["100"]  # Heat, Fargo
    ev = Evidence(item_id=pick.item_id,
                  connections=[Connection(item_id=heat.item_id, title=heat.label, relation="liked", measure="loved",
                                          fans=118, also=79, percent=67, lift=1.6, strength=0.58)],
                  catalog=CatalogStats(rating_mean=4.2, rating_count=508, rating_scale=5, viewers=508,
                                       popularity_rank=9, catalog_size=1682, top_percent=1))
    good = "Liked by 67% of the 118 viewers who loved Heat (1995). An average score of 4.2/5 from 508 ratings."
    assert checker.check(good, pick, evidence=ev).ok  # Heat may be named: it is in the evidence
    assert not checker.check(good, pick).ok  # without the evidence, Heat is another title
    verdict = checker.check("Liked by 73% of the 118 viewers who loved Heat (1995).", pick, evidence=ev)
    assert verdict.problems == ("number 73 is not in the evidence of Fargo (1996)",)
    assert checker.check("片库里观看人数排第9，共1,682部。", pick, evidence=ev).ok
    assert not checker.check("片库里观看人数排第3，共1,682部。", pick, evidence=ev).ok


def test_chinese_genre_words_are_claims_outside_film_names(checker, catalog):
    fargo = catalog["100"]  # Crime, Drama, Thriller
    assert checker.check("一部犯罪惊悚片。", fargo).ok
    assert checker.mentions("一部恐怖片。").genres == {"horror"}
    assert not checker.check("一部恐怖片。", fargo).ok
    assert checker.check("喜欢《恐怖蜡像馆》的人也喜欢它。", fargo).ok  # a genre word inside a film's name claims nothing


def test_prompt_echo_is_not_an_explanation():
    assert finish_text("Movie: Alien (1979) Genres: Horror, Sci-Fi.", True, 200, 2) is None


@pytest.mark.parametrize("text", [
    "The Godfather: The Ultimate Destruction (1972) has captivated audiences worldwide.",
    "The Godfather Returns is a 1972 crime classic.",
    "Crime fans will love Corleone Nights (1972).",
])
def test_invented_titles_around_the_real_one_are_rejected(checker, catalog, text):
    verdict = checker.check(text, catalog["127"])  # The Godfather (1972)
    assert not verdict.ok
    assert any("title" in p for p in verdict.problems), verdict.problems


@pytest.mark.parametrize("item_id, text", [
    ("127", "I recommend The Godfather (1972), a crime drama."),
    ("187", "The Godfather: Part II (1974) continues the crime saga."),
    ("1", "Toy Story (1995) is an animated comedy for children."),
])
def test_real_titles_with_their_year_pass(checker, catalog, item_id, text):
    verdict = checker.check(text, catalog[item_id])
    assert verdict.ok, verdict.problems


def test_words_inside_the_items_own_title_make_no_claim(checker, catalog):
    kids = next(item for item in catalog if item.title.startswith("Kids in the Hall"))  # a comedy, not for children
    assert checker.check(f"{kids.label} is a sketch-show comedy.", kids).ok
    assert not checker.check(f"{kids.label} is a children's comedy.", kids).ok
    holland = next(item for item in catalog if item.title == "Mr. Holland's Opus")
    assert checker.check(f"{holland.label} is a moving drama.", holland).ok
    verdict = checker.check(f"{holland.title} (1982) is a moving drama.", holland)  # wrong year after the title
    assert not verdict.ok and any("1982" in p for p in verdict.problems)


def test_an_asked_for_genre_is_no_licence_to_mislabel_the_item(checker, toy_story):
    request = "sci-fi and action films"
    assert not checker.check("Toy Story is a beloved sci-fi adventure.", toy_story, allowed_text=request).ok
    assert checker.check("It is not the sci-fi you asked for, but a warm animated comedy.", toy_story,
                         allowed_text=request).ok
