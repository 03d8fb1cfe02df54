"""The strict claim checker (agent/llm/claims.py) on hand-made good and bad sentences about real picks."""
from __future__ import annotations

import dataclasses

import pytest

import prompts
from agent.llm.claims import generic_phrases, shared_ngram, word_count
from agent.llm.evidence_text import ExplanationWriter, frames
from retrieval.evidence import CatalogStats, Connection, Evidence, Satisfied


GOOD = [
    "Since you liked Heat (1995), note that 79 of its 118 fans also loved this crime thriller, rated 4.2 out of 5.",
    "Fans of Heat (1995) loved it too: 79 of 118 of them, and it is the crime film you asked for.",
    "It is the crime film you asked for, and its 508 ratings average 4.2 out of 5, in the top 4% of the catalog.",
    "An acclaimed crime drama: its 508 ratings average 4.2 out of 5, among the top 4% of the catalog by rating.",
    "Like Heat (1995), which you liked, it is crime and thriller, and 67% of the fans of Heat loved it as well.",
]


@pytest.mark.parametrize("text", GOOD)
def test_sentences_that_state_only_the_evidence_pass(fargo_verdict, text):
    verdict = fargo_verdict(text)
    assert verdict.ok, verdict.problems
    assert verdict.cited


BAD = [
    # genre words, compounds and hyphenations
    ("Fargo is a comedy-drama with a dark streak, loved by 79 of the 118 fans of Heat (1995).", "genre 'comedy'"),
    ("A sci-fi action ride that 79 of the 118 fans of Heat (1995) loved, as you asked for crime.", "genre 'action'"),
    ("It is a rom-com that 79 of the 118 fans of Heat (1995) also loved, and it is crime as you asked.",
     "'rom-com' claims"),
    # the measured failures: invented praise, plots, people
    ("Fargo is a classic crime film that has captivated audiences worldwide, loved by 79 of 118 Heat (1995) fans.",
     "generic phrase 'captivated audiences'"),
    ("Directed by Joel Coen, this crime thriller follows a police chief, loved by 79 of 118 fans of Heat (1995).",
     "names someone or something not in the evidence"),
    ("It follows a group of survivors in a makeshift community, and 79 of the 118 fans of Heat (1995) loved it.",
     "unsupported word 'survivors'"),
    ("An award-winning crime thriller: 79 of the 118 fans of Heat (1995) loved it, rated 4.2 out of 5.",
     "award claim"),
    # numbers: wrong, swapped, percentages, ranks, orphaned from their title
    ("Liked by 73% of the 118 viewers who loved Heat (1995), and it is the crime film you asked for today.",
     "73% is not a percentage"),
    ("Of the 79 fans of Heat (1995), 118 also loved this one, which is the crime film you asked for here.",
     "is not the size of any group"),
    ("It is the 2nd most watched film in the catalog, and 79 of the 118 fans of Heat (1995) loved it.",
     "rank 2nd"),
    ("It is the crime film you asked for, and 79 of its 118 fans also loved this one, with 4.2 out of 5.",
     "without naming it"),
    # what the viewer did or asked for
    ("You rated Fargo (1996) highly, and it is the crime film you asked for, with 508 ratings behind it.",
     "itself"),
    ("It is the thriller you asked for, and 79 of the 118 fans of Heat (1995) loved it, from your chosen years.",
     "says you asked for"),
    ("You asked for more like Heat (1995), and 79 of its 118 fans also loved this crime film, rated 4.2 out of 5.",
     "more like"),
    # length, markup, citing nothing
    ("A crime film you asked for.", "words (a sentence needs 12-40)"),
    ("It is the crime film you asked for ![x](http://host/p.png) and 79 of the 118 fans of Heat (1995) loved it.",
     "markup or a link"),
    ("It is a crime drama and thriller, a film in the catalog that many people in the catalog have seen over time.",
     "cites none of the pick's evidence"),
]


@pytest.mark.parametrize("text, problem", BAD)
def test_unsupported_claims_are_rejected(fargo_verdict, text, problem):
    verdict = fargo_verdict(text)
    assert not verdict.ok and any(problem in p for p in verdict.problems), verdict.problems


def test_praise_needs_a_top_decile_rating(checker, fargo_case, plain_case):
    text = "An acclaimed {g} film you asked for, with an average of {m} out of 5 from {n} ratings in the catalog."
    fargo, ev = fargo_case
    assert checker.check_claims(text.format(g="crime", m="4.2", n=508), fargo, ev, ["Crime"]).ok
    four, ev4 = plain_case
    verdict = checker.check_claims(text.format(g="thriller", m="3.0", n=90), four, ev4, ["Thriller"])
    assert any("praise 'acclaimed' needs a top-10% rating" in p for p in verdict.problems), verdict.problems
    popular = "A popular thriller you asked for, watched by 90 viewers and rated 3.0 out of 5 on average here."
    assert any("needs a top-10% audience" in p for p in checker.check_claims(popular, four, ev4, ["Thriller"]).problems)


def test_plot_words_come_only_from_a_description_the_catalog_holds(checker, plain_case):
    four, evidence = plain_case
    text = "It is the thriller you asked for, set in a hotel on New Year's Eve, and 90 viewers rated it 3.0 out of 5."
    assert not checker.check_claims(text, four, evidence, ["Thriller"]).ok
    own = dataclasses.replace(four, description="Four stories set in one hotel on New Year's Eve.",
                              description_generated=False)
    assert checker.check_claims(text, own, evidence, ["Thriller"]).ok, checker.check_claims(text, own, evidence).problems
    generated = dataclasses.replace(own, description_generated=True)  # our own LLM text is no source of facts
    assert not checker.check_claims(text, generated, evidence, ["Thriller"]).ok


def test_injected_request_text_licenses_nothing(checker, plain_case):
    four, evidence = plain_case
    text = "It is the thriller you asked for, and it won three Oscars, rated 3.0 out of 5 by its 90 viewers so far."
    verdict = checker.check_claims(text, four, evidence, ["Thriller"])
    assert not verdict.ok and any("award" in p for p in verdict.problems)


def test_personal_evidence_is_told_apart_from_catalog_statistics(checker, fargo_case):
    fargo, evidence = fargo_case
    personal = checker.check_claims(GOOD[0], fargo, evidence, ["Crime"])
    assert personal.ok and personal.personal and "connection" in personal.cited
    stats = checker.check_claims("Its 508 ratings average 4.2 out of 5, which puts it in the top 4% of the catalog "
                                 "by rating.", fargo, evidence, ["Crime"])
    assert stats.ok and not stats.personal and "rating" in stats.cited and "connection" not in stats.cited


def test_item_descriptions_verbalise_audience_evidence(checker, catalog, titled, log):
    item = titled("Big Night (1996)")
    index = catalog.index_of(item.item_id)
    evidence = Evidence(item_id=item.item_id, connections=log.audience(index), catalog=log.stats(index))
    c = evidence.connections[0]
    good = f"A 1996 drama loved by {c.also} of the {c.fans} viewers who loved {c.title}, with {log.stats(index).rating_count} ratings."
    assert checker.check_claims(good, item, evidence).ok, checker.check_claims(good, item, evidence).problems
    invented = "A 1996 drama about two brothers who run an Italian restaurant, starring Stanley Tucci and Tony Shalhoub."
    problems = checker.check_claims(invented, item, evidence).problems
    assert any("unsupported word" in p for p in problems) and any("names someone" in p for p in problems)
    assert not checker.check_claims(f"You liked {c.title}, and {c.also} of its {c.fans} fans loved this drama from "
                                    "1996 as well.", item, evidence).ok  # nobody "you" named it


def test_the_worked_examples_pass_the_checker(checker, catalog):
    table = prompts.load_table("explain_examples")
    for task in ("explain", "describe"):
        for row in table[task]:
            evidence = Evidence.model_validate_json(row["evidence"])
            verdict = checker.check_claims(row["answer"], catalog[row["item_id"]], evidence,
                                           row.get("asked_genres", []))
            assert verdict.ok, (row["answer"], verdict.problems)


def test_template_explanations_make_no_unsupported_claim(checker, fargo_case, plain_case):
    picks = [fargo_case, plain_case]
    for (item, evidence), text in zip(picks, ExplanationWriter().write(picks)):
        verdict = checker.check_claims(text, item, evidence, min_words=0)
        assert verdict.ok, (text, verdict.problems)


def test_every_english_frame_states_only_its_evidence(checker, fargo_case, titled):
    """Each frame of prompts/explain_template_en.toml, filled with a pick's evidence, passes the checker (every word
    a template writes is in its vocabulary, every number in its role)."""
    fargo, base = fargo_case
    evidence = base.model_copy(update={"satisfies": Satisfied(genres=["Crime", "Drama"], asked_genres=2,
                                                              all_genres=True, year_min=1990, year_max=1999,
                                                              moods=["dark"], mood_genres=["Crime"])})
    fields = {"source": "Heat (1995)", "fans": "118", "also": "79", "percent": "67", "lift": "1.6",
              "genres": "Crime and Drama", "mean": "4.2", "scale": "5", "count": "508", "rank": "3", "size": "1,682",
              "top": "1", "viewers": "508", "moods": "dark"}
    by_kind = {"shared": {"genres": "Crime and Thriller"}, "mood": {"genres": "Crime"}}
    toy = titled("Toy Story (1995)")
    family = Evidence(item_id=toy.item_id, satisfies=Satisfied(genres=["Comedy"], asked_genres=1,
                                                               audience_genres=["Children's", "Animation"]))
    for kind, texts in frames("en").items():
        for frame in texts:
            text = frame.format(**{**fields, **by_kind.get(kind, {}), **({"genres": "Children's and Animation"}
                                                                          if kind == "audience" else {})})
            item, ev = (toy, family) if kind == "audience" else (fargo, evidence)
            verdict = checker.check_claims(text, item, ev, ["Comedy"] if kind == "audience" else ["Crime", "Drama"],
                                           min_words=0)
            # a frame that cites nothing by itself (a wish, a retrieval signal) always joins one that does
            assert set(verdict.problems) <= {"cites none of the pick's evidence"}, (kind, text, verdict.problems)


def test_helpers():
    assert word_count("Liked by 67% of the 118 viewers who loved Heat (1995).") == 11
    assert shared_ngram("their fans also loved this film", ["and its fans also loved this film too"]) == (
        "fans", "also", "loved", "this", "film")
    assert shared_ngram("one two three four five", ["one two three four six"]) is None
    # a title is one word: two picks may both name the title the viewer liked
    opened = "You liked Donnie Brasco (1997), and 16 of its 101 fans loved this film."
    assert shared_ngram(opened, ["You liked Donnie Brasco (1997); 29 of its 101 fans also loved it."]) == (
        "you", "liked", "donnie", "brasco", "1997")
    assert shared_ngram(opened, ["You liked Donnie Brasco (1997); 29 of its 101 fans also loved it."],
                        titles=["Donnie Brasco"]) is None
    assert shared_ngram(opened, ["You liked Donnie Brasco, and 29 of its 101 fans loved this film."],
                        titles=["Donnie Brasco"]) == ("101", "fans", "loved", "this", "film")
    assert generic_phrases("A must-see that has captivated audiences.") == ("captivated audiences", "must-see")


@pytest.mark.parametrize("text, problem", [
    ("Fargo (1996), which you liked, is the crime film you asked for, rated 4.2 out of 5 by 508 viewers.", "itself"),
    ("Since you liked Heat (1995), note that 79 of its 118 fans loved it; your rating was 4.2 out of 5 here.",
     "own rating"),
    ("Like Heat (1995), which you liked, it is a crime drama, and 79 of its 118 fans loved this one as well.",
     "share drama"),
])
def test_what_the_viewer_did_is_what_the_evidence_says(checker, fargo_case, text, problem):
    fargo, evidence = fargo_case
    verdict = checker.check_claims(text, fargo, evidence, asked_genres=["Crime"])
    assert not verdict.ok and any(problem in p for p in verdict.problems), verdict.problems


@pytest.mark.parametrize("text, problem", [
    # a light mood was asked: its genres are the system's reading, no genre wish of the viewer's
    ("It is the romance you asked for, and it fits the light mood you wanted, rated 4.2 out of 5 by 508 viewers.",
     "says you asked for romance"),
    ("Crime and Romance, as you've mentioned, and 79 of the 118 fans of Heat (1995) loved this one too.",
     "says you asked for"),
    ("It is the romance you've been asking for, and it fits the light mood, rated 4.2 out of 5 by 508 viewers.",
     "says you asked for romance"),
    ("It is the romance you ask for, and it fits the light mood you wanted, rated 4.2 out of 5 by 508 viewers.",
     "says you asked for romance"),
    # the asked years said of the viewer's own title, not the pick's
    ("You rated Heat (1995) highly, within the years you asked for, and 79 of its 118 fans loved this one too.",
     "ties the years you asked for to Heat (1995)"),
])
def test_a_request_reference_holds_only_what_was_asked(checker, fargo_case, text, problem):
    fargo, base = fargo_case
    evidence = base.model_copy(update={"satisfies": Satisfied(genres=["Crime"], asked_genres=1, year_min=1996,
                                                              year_max=1999, moods=["light"],
                                                              mood_genres=["Romance"])})
    verdict = checker.check_claims(text, fargo, evidence, asked_genres=["Crime"])
    assert not verdict.ok and any(problem in p for p in verdict.problems), verdict.problems
    fine = "It fits the light mood you wanted, and it is from 1996, within the years you asked for; 508 viewers."
    assert checker.check_claims(fine, fargo, evidence, asked_genres=["Crime"]).ok, \
        checker.check_claims(fine, fargo, evidence, asked_genres=["Crime"]).problems


def test_fans_who_also_loved_the_pick_share_no_genre_with_their_title(checker, fargo_case):
    fargo, evidence = fargo_case  # Heat is no drama: its fans loving this drama says nothing of Heat's genres
    verdict = checker.check_claims("You liked Heat (1995), and 79 of its 118 fans also loved this drama, a crime film "
                                   "as you asked.", fargo, evidence, asked_genres=["Crime"])
    assert verdict.ok, verdict.problems


def test_a_number_belongs_to_the_title_named_even_when_another_connection_shares_it(checker, titled, fargo_case):
    fargo, evidence = fargo_case
    pulp = titled("Pulp Fiction (1994)")
    both = evidence.model_copy(update={"connections": [
        *evidence.connections, Connection(item_id=pulp.item_id, title=pulp.label, relation="liked", measure="loved",
                                          fans=210, also=141, percent=67, lift=1.5, strength=0.5)]})
    named = "Liked by 67% of the 118 fans of Heat (1995), and it is the crime film you asked for."
    assert checker.check_claims(named, fargo, both, asked_genres=["Crime"]).ok
    unnamed = "Liked by 67% of the 210 viewers who loved it elsewhere, and it is the crime film you asked for."
    verdict = checker.check_claims(unnamed, fargo, both, asked_genres=["Crime"])
    assert "states the counts of the fans of Pulp Fiction (1994) without naming it" in verdict.problems


def test_template_frames_that_state_suitability_pass(checker, titled):
    pulp = titled("Pulp Fiction (1994)")
    mix = Evidence(item_id=pulp.item_id, satisfies=Satisfied(genres=["Crime", "Drama"], asked_genres=2, all_genres=True),
                   catalog=CatalogStats(rating_mean=4.1, rating_count=390, rating_scale=5, viewers=390,
                                        popularity_rank=8, catalog_size=1682, top_percent=1, rating_top_percent=12))
    text = "Rated 4.1 on average by the 390 people who scored it. A true mix of Crime and Drama, as requested."
    assert checker.check_claims(text, pulp, mix, asked_genres=["Crime", "Drama"]).ok
    toy = titled("Toy Story (1995)")
    family = Evidence(item_id=toy.item_id, satisfies=Satisfied(genres=["Comedy"], asked_genres=1,
                                                               audience_genres=["Children's", "Animation"]),
                      catalog=CatalogStats(viewers=452, popularity_rank=5, catalog_size=1682, top_percent=1,
                                           rating_top_percent=30))
    suits = "In the top 1% of the catalog by audience, with 452 viewers. Good for a family evening as Animation."
    assert checker.check_claims(suits, toy, family, asked_genres=["Comedy"]).ok
    # "good" as praise still needs a top-decile rating
    praise = "In the top 1% of the catalog by audience, with 452 viewers, and a good film for a family evening."
    verdict = checker.check_claims(praise, toy, family, asked_genres=["Comedy"])
    assert "praise 'good' needs a top-10% rating in the evidence" in verdict.problems, verdict.problems
