"""Sentences true in every claim but garbled (agent/llm/claim_style.py) are rejected by the checker, and the
claim-constrained decoder steers around them. Modelled on the awkward rows of the manual audits
(benchmarks/results/eval-explain-audit.md), rewritten for the Fargo case (Crime, Drama, Thriller; 1996)."""
from __future__ import annotations

import pytest

from agent.llm.constrained import ClaimConstraint

GOOD = [
    "You liked Heat (1995), and 79 of its 118 fans also loved this crime film (67%).",
    "Heat (1995), which you liked, shares its crime with this film, and 79 of its 118 fans loved it too.",
    "You rated Heat (1995) highly, and 79 of its 118 fans also loved this 1996 crime film, rated 4.2 out of 5.",
]
BAD = [  # (sentence, a part of the problem it must raise)
    ("You liked Heat (1995), and as a crime film it is Crime, loved by 79 of its 118 fans (67%).",
     "says 'crime' twice"),
    ("It is the 1996 crime film you asked for, the 1996 film rated 4.2 out of 5 on average by 508 viewers.",
     "says '1996' twice"),
    ("You rated Heat (1995) highly, and 67% of its 118 fans also loved this crime film (67%).",
     "says '67%' twice"),
    ("You liked Heat (1995), and this film shares its 1996 with 79 of its 118 fans (67%), rated 4.2 out of 5.",
     "garbles what it shares"),
    ("You liked Heat (1995) too, and 79 of its 118 fans also loved this crime film (67%).",
     "opens with 'too' that refers to nothing"),
    ("You liked Heat (1995) highly, and 79 of its 118 fans also loved this crime film (67%).",
     "says you liked a title 'highly'"),
    ("You rated Heat (1995) highly, with 79 of its 118 fans also loved this crime film (67%).",
     "gives a 'with' phrase a verb"),
    ("It is the crime film you asked for, and it is it is rated 4.2 out of 5 on average by 508 viewers.",
     "writes words twice in a row"),
    ("You liked Heat (1995), and 79 of its 118 fans also loved this crime film too, rated 4.2 out of 5.",
     "says 'also' and 'too' of one thing"),
    ("You liked Heat (1995), too. It is the crime film you asked for, rated 4.2 out of 5 by 508 viewers.",
     "opens with 'too' that refers to nothing"),
]


@pytest.mark.parametrize("text", GOOD)
def test_a_sentence_that_says_each_fact_once_passes(fargo_verdict, text):
    assert fargo_verdict(text).ok, fargo_verdict(text).problems


@pytest.mark.parametrize("text, problem", BAD)
def test_a_garbled_sentence_is_rejected(fargo_verdict, text, problem):
    problems = fargo_verdict(text).problems
    assert any(problem in p for p in problems), problems


def test_a_second_sentence_may_name_the_genre_again(fargo_verdict):
    text = "Like Heat (1995), it is Crime and Thriller. Of the genres you asked for, it has Crime."
    assert not any("twice" in p for p in fargo_verdict(text).problems)


def test_the_decoder_steers_around_a_fact_said_twice(checker, fargo_case):
    c = ClaimConstraint.for_pick(checker, *fargo_case)
    assert c.allows("You liked Heat (1995), and as a crime film it is", " Thriller")
    assert not c.allows("You liked Heat (1995), and as a crime film it is Crime,", " loved")
    assert not c.allows("You liked Heat (1995) highly,", " and")
    assert c.allows("You rated Heat (1995) highly,", " and")
