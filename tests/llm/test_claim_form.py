"""How facts are written (agent/llm/claim_form.py): the checker rejects words in a case no title or sentence uses and
pairs of numbers the evidence does not pair, and the claim-constrained decoder cannot write either. The bad
sentences are ones the LoRA explainer wrote on held-out cases (`marquee bench explain`, 2026-12-01)."""
from __future__ import annotations

import pytest

from agent.llm.claim_form import WordForms, pair_open
from agent.llm.constrained import ClaimConstraint

GOOD = [
    "You liked Heat (1995), and 79 of its 118 fans also loved this crime film, the genre you asked for.",
    "Crime, as you asked: 79 of the 118 fans of Heat (1995) loved it too, and it averages 4.2 out of 5.",
]
MISWRITTEN = [
    ("You liked HeAt (1995), and 79 of its 118 fans also loved this crime film, the genre you asked for.", "HeAt"),
    ("You liked Heat (1995), and 79 of its 118 fanS also loved this crime film, the genre you asked for.", "fanS"),
    ("You liked heat (1995), and 79 of its 118 fans also loved this crime film, the genre you asked for.", "heat"),
]
UNPAIRED = [  # (sentence, the pair quoted in the problem)
    ("You liked Heat (1995), and 79 of its 1,682 fans also loved this crime film, the genre you asked for.",
     "79 of its 1,682"),
    ("You liked Heat (1995), and 118 of its 79 fans also loved this crime film, the genre you asked for.",
     "118 of its 79"),
]


@pytest.mark.parametrize("text", GOOD)
def test_words_as_titles_and_sentences_write_them_pass(fargo_verdict, text):
    assert fargo_verdict(text).ok, fargo_verdict(text).problems


@pytest.mark.parametrize("text, word", MISWRITTEN)
def test_a_word_in_a_case_no_title_or_sentence_uses_is_rejected(fargo_verdict, text, word):
    problems = fargo_verdict(text).problems
    assert any(f"writes {word!r}" in p for p in problems), problems


@pytest.mark.parametrize("text, pair", UNPAIRED)
def test_a_pair_the_evidence_does_not_hold_is_rejected(fargo_verdict, text, pair):
    problems = fargo_verdict(text).problems
    assert any(pair in p and "pairs numbers" in p for p in problems), problems


def test_word_forms_keep_a_title_only_words_case():
    forms = WordForms.of(["Donnie Brasco (1997)", "The Right Stuff (1983)"], ["the", "right", "film", "stuff"])
    assert forms.run_ok("Brasco") and not forms.run_ok("brasco") and not forms.run_ok("BrAsco")
    assert forms.run_ok("stuff") and forms.run_ok("Stuff") and not forms.run_ok("StUfF")  # "stuff" is a common word
    assert forms.run_open("Bra") and not forms.run_open("bra")  # only the title supplies "bra…"
    assert forms.run_open("fi") and not forms.run_open("fI")


@pytest.fixture(scope="module")
def fargo_constraint(checker, fargo_case):
    return ClaimConstraint.for_pick(checker, *fargo_case)


def test_the_decoder_cannot_write_a_miswritten_word(fargo_constraint):
    assert fargo_constraint.allows("You liked", " Heat")
    assert not fargo_constraint.allows("You liked", " heat")
    assert not fargo_constraint.allows("You liked He", "At")
    assert not fargo_constraint.allows("Heat (1995): 79 of its 118", " fanS")
    assert fargo_constraint.allows("Heat (1995): 79 of its 118", " fans")


def test_the_decoder_cannot_pair_numbers_the_evidence_does_not_pair(fargo_case, fargo_constraint):
    fargo, evidence = fargo_case
    assert pair_open("and 79 of its 11", fargo, evidence) and pair_open("rated 4.2 out of 5.", fargo, evidence)
    assert not pair_open("and 79 of its 1,6", fargo, evidence)
    assert fargo_constraint.allows("You liked Heat (1995), and 79 of its", " 1")  # on the way to 118
    assert not fargo_constraint.allows("You liked Heat (1995), and 79 of its 1", ",6")  # not to 1,682
    assert not fargo_constraint.allows("It is rated 4.2 out of", " 3")  # 4.2 pairs with 5 only


def test_words_only_a_title_supplies_come_only_with_the_whole_title(checker, titled):
    from retrieval.evidence import CatalogStats, Connection, Evidence

    pick, liked = titled("Scream (1996)"), titled("It's a Wonderful Life (1946)")
    evidence = Evidence(item_id=pick.item_id, connections=[Connection(
        item_id=liked.item_id, title=liked.label, relation="history", measure="loved", fans=120, also=30, percent=25,
        lift=1.2, strength=0.2)], catalog=CatalogStats(rating_mean=3.5, rating_count=467, rating_scale=5, viewers=467,
                                                      popularity_rank=7, catalog_size=1682, top_percent=1,
                                                      rating_top_percent=45))
    garbled = "You rated it is a Wonderful Life highly, and 30 of its 120 fans also loved this film."
    whole = "You rated It's a Wonderful Life (1946) highly, and 30 of its 120 fans also loved this film."
    assert any("part of a title" in p for p in checker.check_claims(garbled, pick, evidence).problems)
    assert checker.check_claims(whole, pick, evidence).ok, checker.check_claims(whole, pick, evidence).problems
    constraint = ClaimConstraint.for_pick(checker, pick, evidence)
    assert not constraint.allows("You rated it is a", " Wonderful")
    assert constraint.allows("You rated It's a", " Wonderful")


def test_only_a_percentage_follows_top(fargo_verdict):
    assert fargo_verdict("You liked Heat (1995), and this crime film is in the top 4% of the catalog by rating.").ok
    problems = fargo_verdict("You liked Heat (1995), and this crime film is in the top 4.2 out of 5.").problems
    assert any("4.2 is stated out of its role" in p for p in problems), problems


def test_a_year_completes_a_pair_only_after_in(fargo_case):
    fargo, evidence = fargo_case
    assert pair_open("loved by 79 in 19", fargo, evidence)  # "79 in 1996"
    assert not pair_open("loved by 79 of its 19", fargo, evidence)
