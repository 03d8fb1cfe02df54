"""What a sentence says of whom (agent/llm/claim_meaning.py): true numbers and titles tied to the wrong subject are
rejected by the checker, and the claim-constrained decoder cannot write them. The bad sentences are modelled on the
ones the manual audit found shown (benchmarks/results/eval-explain-audit.md), rewritten for the Fargo case."""
from __future__ import annotations

import pytest

from agent.llm.constrained import ClaimConstraint

GOOD = [
    "You liked Heat (1995), and 79 of its 118 fans also loved this crime film (67%).",
    "Heat (1995), which you liked, shares its crime with this film, and 79 of its 118 fans loved it too.",
    "It keeps the Crime and Thriller you liked in Heat (1995), and it is in the top 4% of the catalog by rating.",
    "Of the 118 viewers who loved Heat (1995), 79 also loved this crime film, in the top 1% by audience.",
    "It is the crime film you asked for, watched by 508 viewers and rated 4.2 out of 5 on average.",
    "Its rating is in the top 4% of the catalog, and it is the crime film you asked for, watched by 508 viewers.",
    "It is the crime film you asked for, number 3 of 1,682 by audience, and rated 4.2 out of 5 on average.",
    "You liked Heat (1995), and 67% of its 118 fans also loved this crime film, rated 4.2 out of 5.",
    "Heat (1995) is a film you rated highly, and 79 of its 118 fans also loved this crime film (67%).",
    "It is the crime film you asked for, one of the most watched in the catalog (number 3 of 1,682 by audience).",
]
BAD = [  # (sentence, a part of the problem it must raise)
    ("You liked Heat (1995), and it is a film you loved, a crime film rated 4.2 out of 5 on average.",
     "says you loved something other than a title of yours"),
    ("Crime movies you love: 79 of the 118 fans of Heat (1995) loved this one too, and it is a crime film.",
     "says you love something other than a title of yours"),
    ("You liked Heat (1995), and its 118 fans loved it too, so this crime film is rated 4.2 out of 5.",
     "says all 118 (the fans of Heat (1995)) loved the pick"),
    ("You liked Heat (1995); this crime film is a favorite of 508 viewers, rated 4.2 out of 5 on average.",
     "a favorite of all 508"),
    ("You liked Heat (1995), and 508 viewers have watched Heat (1995) as well as this crime film.",
     "says the pick's 508 viewers watched another title"),
    ("You liked Heat (1995), and 1996 is a crime film that 79 of its 118 fans also loved.",
     "treats a year as a film"),
    ("You liked Heat (1995), and this 1996 crime film is Heat (1995), loved by 79 of its 118 fans.",
     "says the pick is another title"),
    ("You liked Heat (1995), and 79 of its 118 fans also loved this crime film (1%), rated 4.2 out of 5.",
     "gives 79 of 118 as 1% (it is 67%)"),
    ("You liked Heat (1995), and this crime film is in the top 1% of the catalog by rating, at 4.2 out of 5.",
     "'top 1% by rating': that is not its percentile by rating"),
    ("You liked Heat (1995), and this crime film is 3 of 1,682 viewers in the catalog, rated 4.2 out of 5.",
     "reads a place in the catalog as a count of people"),
    ("It is the crime film you asked for, and the family rating is 4.2 out of 5 from 508 ratings.",
     "presents the average of all viewers as 'family rating'"),
    ("You liked Heat (1995) so much that this crime film is for you: 79 of its 118 fans loved it too.",
     "invents a cause"),
    ("It is a crime film and a new favorite, watched by 508 viewers and rated 4.2 out of 5 on average.",
     "calls it new"),
    ("It is the crime film you asked for, though it is not from 1996, rated 4.2 out of 5 on average.",
     "denies its year"),
    ("You liked Heat (1995), and this crime film's rating is in the top 1% of the catalog, at 4.2 out of 5.",
     "that is not its percentile by rating"),
    ("You liked Heat (1995); 79 of its fans loved this crime film, and 45% of the 118 fans who loved it too.",
     "no such share of that group"),
    ("You liked Heat (1995), and 79 of its 118 fans also loved this crime film (Heat (1995)), rated 4.2 out of 5.",
     "names the pick as another title"),
    ("You liked Heat (1995), and 79 of its 118 fans loved this crime film, and 20% of the catalog is Crime.",
     "no share of the catalog"),
    ("You liked Heat (1995), and 508 viewers watched it too, a crime film rated 4.2 out of 5 on average.",
     "viewers watched it too"),
    ("It is the crime film you asked for, 3 of 1,682 in the catalog, and rated 4.2 out of 5 on average.",
     "is its place by audience"),
    ("You liked Heat (1995); Heat (1995) is a 1996 crime film, and 79 of its 118 fans also loved this one.",
     "describes another title as if it were the pick"),
    ("You liked Heat (1995) is Crime and Thriller, and 79 of its 118 fans also loved this film (67%).",
     "describes another title as if it were the pick"),
    ("It is a crime film from 1996, with a 508 viewers' request, rated 4.2 out of 5 on average by its raters.",
     "gives the request to a group of viewers"),
    ("It is the crime film you asked for, a favorite among viewers, rated 4.2 out of 5 from 508 ratings.",
     "claims a following the evidence does not state"),
    ("It is the crime film you asked for, and it is a new crime movie rated 4.2 out of 5 from 508 ratings.",
     "calls it new ('a new crime')"),
    ("You liked Heat (1995); 79 of its 118 fans also loved this crime film (1% of its 1,682 in the catalog).",
     "gives 79 of 118 as 1%"),
    # seen passing once rows stepped back from dead ends (agent/llm/lookahead.py), 2026-12-02
    ("You liked Heat (1995); Heat (1995) is a crime film you want to watch, and 79 of its 118 fans loved this one.",
     "describes another title as if it were the pick"),
    ("You asked for more like Heat (1995), but you didn't mention that this crime film is rated 4.2 out of 5.",
     "says what you do not want or did not say"),
    ("You liked Heat (1995), and this crime film is one you don't want to watch, rated 4.2 out of 5 on average.",
     "says what you do not want or did not say"),
    ("It is the crime film you asked for, and it is from 1996, within the years you wanted to avoid.",
     "puts it among what you wanted to avoid"),
    ("You liked Heat (1995) so much, it is a crime film, and 79 of its 118 fans also loved this one (67%).",
     "invents a cause"),
    ("You rated Heat (1995) highly, and its 118 fans who loved this crime film too, rated 4.2 out of 5 on average.",
     "says all 118 (the fans of Heat (1995)) loved the pick"),
    # the misses of the 06:35 audit (benchmarks/results/eval-explain-audit.md), rewritten for the Fargo case
    ("You liked Heat (1995), and 118 fans of this film loved it too; it is a crime film rated 4.2 out of 5.",
     "says all 118 (the fans of Heat (1995)) loved the pick"),
    ("You liked Heat (1995), and 67% of the audience also loved this crime film, rated 4.2 out of 5 on average.",
     "gives a share to a whole audience"),
    ("It is the crime film you asked for, and it is not from the 1990s, rated 4.2 out of 5 on average by its raters.",
     "denies its decade"),
    ("You liked Heat (1995), and 508 viewers watched this crime film too, rated 4.2 out of 5 on average.",
     "as if they also watched your title"),
    ("You rated Heat (1995) highly, and as a 1996 crime film you loved Heat (1995), rated 4.2 out of 5 on average.",
     "gives the pick's facts to another title"),
    ("You rated Heat (1995) highly, and its rating is in the top 4% of the catalog, at 4.2 out of 5 on average.",
     "gives the pick's statistic to the title before it"),
    ("It is the crime film you asked for, a favorite of the thrilling mood you want, rated 4.2 out of 5 on average.",
     "claims a following the evidence does not state"),
    ("You liked Heat (1995), and 79 of its 118 fans also loved this crime film (1,682 in the catalog by audience).",
     "gives the catalog's size as another figure"),
    ("It is the crime film you asked for, the 1996 film that has been giving the most views, rated 4.2 out of 5.",
     "claims a superlative ('the most views'): the evidence ranks it number 3 by audience"),
    ("You liked Heat (1995), and you can say that it is a crime film; 79 of its 118 fans also loved it (67%).",
     "talks about the sentence instead of the film"),
    ("It is the crime film you asked for, and 508 viewers have given you 4.2 out of 5 on average.",
     "says viewers gave you something"),
    ("It is the crime film you are asked to watch, rated 4.2 out of 5 on average by 508 viewers.",
     "says you were asked"),
    ("You liked Heat (1995), and you want to watch Heat (1995) too, a crime film rated 4.2 out of 5.",
     "says you want to watch a title you named"),
    ("You liked Heat (1995), and 79 of its 118 fans have also loved Crime, rated 4.2 out of 5 on average.",
     "loved this film, not a genre"),
    ("You liked Heat (1995), and 118 viewers who loved the film too made it a crime film rated 4.2 out of 5.",
     "says all 118 (the fans of Heat (1995)) loved the pick"),
    ("You rated Heat (1995) highly, and its 508 ratings are in the top 4% of the catalog by rating.",
     "gives the pick's statistic to the title before it"),
    ("It is the crime film you asked for, rated 4.2 out of 5 from 1,682 in the catalog.",
     "gives the catalog's size as another figure"),
    ("You liked Heat (1995), and 67% of its ratings are from 508 viewers, a crime film rated 4.2 out of 5.",
     "gives a share to a whole audience"),
    ("You liked Heat (1995), and it is a crime film you should watch, rated 4.2 out of 5 on average.",
     "generic phrase"),
    ("You liked Heat (1995); 79 of its 118 fans also loved this crime film, and 508 viewers watch Heat (1995).",
     "says the pick's 508 viewers watch another title"),
    ("It is the crime film you asked for, and it is a film you haven't seen before, rated 4.2 out of 5.",
     "says what you do not want or did not say"),
    ("You rated Heat (1995) highly, and it is one of the films you rate highly, a crime film rated 4.2 out of 5.",
     "says you rate something other than a title of yours"),
    ("You liked Heat (1995), and 79 of its 118 fans also loved this crime film (top 1%), rated 4.2 out of 5.",
     "puts a percentile where the pair's share goes"),
    ("It is the crime film you asked for, and as an audience it suits 508 viewers, rated 4.2 out of 5 on average.",
     "says it suits a counted audience"),
    ("You liked Heat (1995), and it is one of the films highly recommended by many, rated 4.2 out of 5.",
     "generic phrase"),
]


@pytest.mark.parametrize("text", GOOD)
def test_facts_said_of_their_own_subjects_pass(fargo_verdict, text):
    assert fargo_verdict(text).ok, fargo_verdict(text).problems


@pytest.mark.parametrize("text, problem", BAD)
def test_a_fact_tied_to_the_wrong_subject_is_rejected(fargo_verdict, text, problem):
    problems = fargo_verdict(text).problems
    assert any(problem in p for p in problems), problems


@pytest.fixture(scope="module")
def fargo_constraint(checker, fargo_case):
    return ClaimConstraint.for_pick(checker, *fargo_case)


def test_the_decoder_lets_the_viewer_like_only_their_titles(fargo_constraint):
    c = fargo_constraint
    assert c.allows("You liked", " Heat")
    assert not c.allows("You liked Heat (1995), and it is a film you loved", ".")
    assert not c.allows("You liked Heat (1995), and it is a film you loved", " and")
    assert c.allows("Heat (1995), which you", " liked")
    assert c.allows("Heat (1995), which you liked", ",")
    assert c.allows("It keeps the Crime and Thriller you liked", " in")
    assert c.allows("It keeps the Crime and Thriller you liked in", " Heat")


def test_the_decoder_cannot_give_a_whole_group_what_part_of_it_did(fargo_constraint):
    c = fargo_constraint
    assert not c.allows("You liked Heat (1995), and its 118 fans loved it", " too")
    assert c.allows("You liked Heat (1995), and 79 of its 118 fans loved it", " too")
    assert not c.may_end("You liked Heat (1995), and its 118 fans loved it too, a crime film rated 4.2 out of 5.")


def test_the_decoder_cannot_write_a_share_of_the_catalog_or_a_bare_rank(fargo_constraint):
    c = fargo_constraint
    assert not c.allows("It is the crime film you asked for, and 20% of the", " catalog")
    assert c.allows("It is the crime film you asked for, in the top 1% of the", " catalog")
    assert not c.allows("It is the crime film you asked for, 3 of 1,682", " in")
    assert c.allows("It is the crime film you asked for, number 3 of 1,682", " by")


def test_the_decoder_may_say_what_another_title_is_to_the_viewer(fargo_constraint):
    c = fargo_constraint
    assert c.allows("Heat (1995) is a", " film")
    assert c.allows("Heat (1995) is a film", " you")
    assert not c.may_end("You liked Heat (1995); Heat (1995) is a 1996 crime film.")


@pytest.mark.parametrize("text, problem", [
    ("You liked Heat (1995), and it is in the genre you asked for, rated 4.2 out of 5 on average.",
     "refers to a genre you asked for"),
    ("It is Drama, and as you said, it is Thriller, rated 4.2 out of 5 on average by 508 viewers.", ""),
    ("It is the thriller you seek, and 79 of the 118 fans of Heat (1995) also loved it (67%).", ""),
])
def test_a_request_that_named_no_genre_is_not_said_to_have_asked_for_one(checker, fargo_case, text, problem):
    from retrieval.evidence import Satisfied

    fargo, evidence = fargo_case
    moody = evidence.model_copy(update={"satisfies": Satisfied(moods=["dark"], mood_genres=["Crime"])})
    verdict = checker.check_claims(text, fargo, moody, [])
    assert not verdict.ok and any(problem in p for p in verdict.problems), verdict.problems
