"""The claim checker's role rules (agent/llm/claim_roles.py): a true number, request reference or title stated in a
role the evidence does not give it is rejected. The audited sentences are the 50 shown LoRA explanations of
benchmarks/results/eval-explain-audit.md with their evidence rebuilt from benchmarks/results/explain-samples.md
(counts, lifts and hidden percentiles as the held-out cases hold them)."""
from __future__ import annotations

import math

import pytest

from agent.llm.evidence_text import ExplanationWriter
from retrieval.evidence import CatalogStats, Connection, Evidence, Satisfied, SharedGenres

CATALOG_SIZE = 1682


def _evidence(titled, label: str, stats: tuple, connections=(), shared=(), **satisfies) -> Evidence:
    """Evidence as the held-out case holds it. `stats`: (mean, ratings = viewers, popularity rank, rating percentile);
    `connections`: (label, relation, fans, also, percent, lift); `shared`: (label, genres)."""
    mean, count, rank, rating_top = stats
    conns = [Connection(item_id=titled(t).item_id, title=t, relation=rel, measure="loved", fans=fans, also=also,
                        percent=pct, lift=lift, strength=0.1) for t, rel, fans, also, pct, lift in connections]
    return Evidence(
        item_id=titled(label).item_id, connections=conns,
        shared_genres=[SharedGenres(item_id=titled(t).item_id, title=t, genres=list(g)) for t, g in shared],
        satisfies=Satisfied(**satisfies),
        catalog=CatalogStats(rating_mean=mean, rating_count=count, rating_scale=5, viewers=count, popularity_rank=rank,
                             catalog_size=CATALOG_SIZE, top_percent=max(1, math.ceil(100 * rank / CATALOG_SIZE)),
                             rating_top_percent=rating_top))


EIGHTIES_HORROR = dict(genres=["Horror"], asked_genres=1, year_min=1980, year_max=1989, avoided_genres=["Fantasy"])
DRAMA_OR_ACTION = dict(asked_genres=2)
FAMILY_COMEDY = dict(genres=["Comedy"], asked_genres=1, audience_genres=["Children's", "Animation"])

# (audit row, pick, sentence, asked genres, evidence: stats, connections, shared, satisfies)
UNSUPPORTED = [
    (4, "Hercules (1997)", "You rated The Fox and the Hound (1981) highly, and as a 1997 musical, it is a highly rated "
     "musical.", ["Musical"], ((3.5, 64, 494, 45), [("The Fox and the Hound (1981)", "history", 23, 5, 22, 5.7),
                                                  ("My Best Friend's Wedding (1997)", "history", 79, 12, 15, 4.0)], (),
                               dict(genres=["Musical"], asked_genres=1, year_min=1990, year_max=1999)),
     "praise 'highly rated'"),
    (11, "Scream (1996)", "Its thriller side fits the exciting mood you asked for, and it is a film you asked to watch.",
     [], ((3.5, 467, 7, 45), [], (), dict(moods=["exciting"], mood_genres=["Thriller"])), "Scream (1996) itself"),
    (12, "Aladdin (1992)", "Comedy movies you want to watch with the kids: 1,682 viewers, rating 3.8 out of 5, and it "
     "is a comedy.", ["Comedy"], ((3.8, 217, 97, 24), [], (), FAMILY_COMEDY), "1,682 is stated out of its role"),
    (14, "Star Wars (1977)", "It is Action, as you asked. 1977, the film you asked for, rated 4.4 out of 5 by 575 "
     "viewers.", ["Drama", "Action"], ((4.4, 575, 1, 1), [], (), dict(genres=["Action"], **DRAMA_OR_ACTION)),
     "Star Wars (1977) itself"),
    (15, "Fargo (1996)", "Fargo (1996) is a drama, as you requested. Its genre is Drama, and it is in the top 6% of "
     "the catalog you asked.", ["Drama", "Action"], ((4.1, 501, 2, 6), [], (), dict(genres=["Drama"], **DRAMA_OR_ACTION)),
     "ties a catalog statistic"),
    (17, "The English Patient (1996)", "It is the drama, as you asked, and it is a romance, as you requested, and it "
     "was a war, as you mentioned.", ["Drama", "Action"],
     ((3.7, 478, 5, 31), [], (), dict(genres=["Drama"], **DRAMA_OR_ACTION)), "says you asked for romance"),
    (20, "Mary Poppins (1964)", "A comedy film for every family, and as a children's comedy it suits the audience you "
     "asked for, and as the top 141 viewers you asked.", ["Comedy"],
     ((3.7, 177, 141, 31), [], (), dict(genres=["Comedy"], asked_genres=1, audience_genres=["Children's"])),
     "141 is stated out of its role"),
    (21, "Evil Dead II (1987)", "It is a 1987 horror film, and as a 1987 horror, it suits the 88 viewers you asked "
     "for.", ["Horror"], ((3.5, 88, 372, 45), [], (), EIGHTIES_HORROR), "ties a catalog statistic ('viewers')"),
    (22, "Heavy Metal (1981)", "It is a 27-year-older, a 1981 horror film, and it is one of the films you asked for. "
     "Its rating is 3.2 out of 5, and it has an average rating of 3.2 out of 5.", ["Horror"],
     ((3.2, 71, 449, 65), [], (), EIGHTIES_HORROR), "27 is glued into a word"),
    (23, "Cliffhanger (1993)", "You rated Die Hard 2 (1990) highly, and as a 16-of-1993 fan of this film.", [],
     ((3.0, 93, 349, 78), [("Die Hard 2 (1990)", "history", 72, 16, 22, 6.8),
                           ("Highlander (1986)", "history", 84, 18, 21, 6.5)], (), {}), "16 is glued into a word"),
    (36, "Contact (1997)", "Drama, as you asked, and 1997 is the film you asked for.", ["Drama", "Western"],
     ((3.8, 498, 3, 24), [], (), dict(genres=["Drama"], asked_genres=2)), "Contact (1997) itself"),
    (41, "Pulp Fiction (1994)", "It is a drama movie, and as a 1994 crime film, it fits the genres you asked for.",
     ["Drama"], ((4.1, 390, 13, 6), [], (), dict(genres=["Drama"], asked_genres=1, year_min=1990, year_max=1999,
                                                 avoided_genres=["War"])), "says you asked for crime"),
    (43, "A Fish Called Wanda (1988)", "A Fish Called Wanda (1988) is one of the films you rated star trek: the Wrath "
     "of Khan (1982) highly, and you rate it 3.8 out of 5 by 246 viewers.", ["Comedy"],
     ((3.8, 246, 69, 24), [("Star Trek: The Wrath of Khan (1982)", "history", 149, 71, 48, 2.8),
                           ("Get Shorty (1995)", "history", 121, 57, 47, 2.8)], (),
      dict(genres=["Comedy"], asked_genres=1)), "the viewer's own rating"),
    (45, "Amistad (1997)", "Amistad (1997) is one of the films you asked for, and as a drama, it suits the genres you "
     "asked. You want to watch The Dose of Amistad, and its rating is 3.9 out of 5.", [],
     ((3.9, 120, 271, 17), [], (), {}), "invents a title around 'Amistad (1997)'"),
    (47, "Forrest Gump (1994)", "It is the romance movie you asked for, as a 17-year-oldeR 1994, and as a romantic "
     "comedy, it has no other genre.", ["Romance"],
     ((3.9, 321, 25, 17), [], (), dict(genres=["Romance"], asked_genres=1, year_min=1990, year_max=1999,
                                       avoided_genres=["Documentary"])), "has no other genre"),
    (48, "Volcano (1997)", "You rated Star Wars (1977) highly, and 23 of its 495 fans also loved this one, and 1682 "
     "viewers watched it too.", [], ((2.8, 205, 106, 87), [("Star Wars (1977)", "history", 495, 23, 5, 0.9),
                                                            ("Men in Black (1997)", "history", 188, 16, 9, 1.6)], (), {}),
     "1682 is stated out of its role: in the evidence it is the catalog size"),
    (50, "Ghost (1990)", "You rated Miracle on 34th Street (1994) highly, and as a romance film, it is The Firm.",
     ["Romance"], ((3.4, 165, 168, 53), [("Miracle on 34th Street (1994)", "history", 64, 27, 42, 4.8),
                                        ("The Firm (1993)", "history", 61, 28, 46, 5.2)], (),
                   dict(genres=["Romance"], asked_genres=1)), "says Ghost (1990) is The Firm (1993)"),
]

SUPPORTED = [
    (1, "Jerry Maguire (1996)", "You rated Primal Fear (1996) highly, and 63 of its 97 fans also loved this drama, "
     "which averages 3.7 out of 5.", [], ((3.7, 375, 16, 31), [("Primal Fear (1996)", "history", 97, 63, 65, 2.6),
                                                                ("The Long Kiss Goodnight (1996)", "history", 98, 56, 57,
                                                                 2.3)], (), {})),
    (5, "Leaving Las Vegas (1995)", "You liked Donnie Brasco (1997), and 48 of its 101 fans also loved this drama, and "
     "294 viewers watched it.", [], ((3.7, 294, 35, 31), [("Donnie Brasco (1997)", "liked", 101, 48, 48, 2.4),
                                                          ("When We Were Kings (1996)", "history", 36, 22, 61, 3.1)],
                                     [("Donnie Brasco (1997)", ["Drama"])], {})),
    (24, "Aliens (1986)", "You rated The Terminator (1984) highly, and 126 of its 215 fans also loved this film (59%).",
     ["Sci-Fi"], ((3.9, 282, 45, 17), [("Alien (1979)", "history", 220, 151, 69, 3.1),
                                      ("The Terminator (1984)", "history", 215, 126, 59, 2.7)], (),
                  dict(genres=["Sci-Fi"], asked_genres=1))),
    (26, "The Adventures of Priscilla, Queen of the Desert (1994)", "You rated Paris, Texas (1984) highly, and 11 of "
     "its 25 fans also loved this film (44%).", [],
     ((3.6, 108, 306, 38), [("Paris, Texas (1984)", "history", 25, 11, 44, 7.2),
                            ("Six Degrees of Separation (1993)", "history", 49, 16, 33, 5.3)],
      [("Serial Mom (1994)", ["Comedy"])], {})),
    (28, "Toy Story (1995)", "Comedy movies you can watch with the kids, and it suits the family audience you asked "
     "for.", ["Comedy"], ((3.9, 444, 8, 17), [], (), FAMILY_COMEDY)),
    (29, "The Silence of the Lambs (1991)", "It is The Silence of the Lambs (1991), a thriller film from 1991, within "
     "the years you asked for, rated 4.3 out of 5 by 381 viewers, in the top 2% of the catalog by rating.",
     ["Thriller"], ((4.3, 381, 15, 2), [], (), dict(genres=["Thriller"], asked_genres=1, year_min=1990, year_max=1999,
                                                    avoided_genres=["Children's"]))),
    (32, "Koyaanisqatsi (1983)", "You rated The Thin Blue Line (1988) highly, and it is a documentary, as you asked.",
     ["Documentary"], ((3.5, 53, 568, 45), [("The Thin Blue Line (1988)", "history", 20, 5, 25, 7.6),
                                           ("Local Hero (1983)", "history", 46, 9, 20, 6.0)], (),
                       dict(genres=["Documentary"], asked_genres=1))),
    (34, "Air Force One (1997)", "You liked The Jackal (1997), and this film shares its action and thriller genre.",
     [], ((3.6, 424, 9, 38), [("The Jackal (1997)", "liked", 33, 21, 64, 2.4),
                              ("Murder at 1600 (1997)", "history", 74, 46, 62, 2.4)],
          [("The Jackal (1997)", ["Action", "Thriller"])], {})),
    (35, "Raiders of the Lost Ark (1981)", "You asked for more of The Princess Bride, and it is Action and Adventure.",
     [], ((4.3, 414, 11, 2), [("The Princess Bride (1987)", "anchor", 245, 186, 76, 2.1)],
          [("The Princess Bride (1987)", ["Action", "Adventure"])], {})),
    (37, "Dances with Wolves (1990)", "It is a drama, and as a western, it suits the genres you asked for.",
     ["Drama", "Western"], ((3.8, 253, 60, 24), [], (), dict(genres=["Drama", "Western"], asked_genres=2,
                                                             all_genres=True))),
    (44, "The American President (1995)", "You rated Field of Dreams (1989) highly, and it is a comedy, as you asked.",
     ["Comedy"], ((3.6, 161, 175, 38), [("Top Gun (1986)", "history", 112, 46, 41, 4.0),
                                       ("Field of Dreams (1989)", "history", 125, 46, 37, 3.6)], (),
                  dict(genres=["Comedy"], asked_genres=1))),
    (49, "Sleepless in Seattle (1993)", "You rated Dave (1993) highly, and 58 of its 104 fans also loved this film "
     "(56%).", ["Romance"], ((3.5, 206, 105, 45), [("Dave (1993)", "history", 104, 58, 56, 4.3),
                                                  ("The American President (1995)", "history", 97, 53, 55, 4.3)], (),
                            dict(genres=["Romance"], asked_genres=1))),
]


def _check(checker, titled, label, text, asked, spec):
    stats, connections, shared, satisfies = spec
    evidence = _evidence(titled, label, stats, connections, shared, **satisfies)
    return checker.check_claims(text, titled(label), evidence, asked, min_words=0, max_words=10_000)


def test_the_audit_rows_are_all_here():
    assert len(UNSUPPORTED) == 17 and len(SUPPORTED) == 12  # benchmarks/results/eval-explain-audit.md


@pytest.mark.parametrize("row, label, text, asked, spec, problem", UNSUPPORTED, ids=[f"audit-{r[0]}" for r in UNSUPPORTED])
def test_the_audited_unsupported_sentences_are_rejected(checker, titled, row, label, text, asked, spec, problem):
    verdict = _check(checker, titled, label, text, asked, spec)
    assert not verdict.ok
    assert any(problem in p for p in verdict.problems), verdict.problems


@pytest.mark.parametrize("row, label, text, asked, spec", SUPPORTED, ids=[f"audit-{r[0]}" for r in SUPPORTED])
def test_the_audited_supported_sentences_pass(checker, titled, row, label, text, asked, spec):
    verdict = _check(checker, titled, label, text, asked, spec)
    assert verdict.ok, verdict.problems


def test_template_explanations_of_the_audited_picks_pass(checker, titled):
    rows = [(label, asked, spec) for _, label, _, asked, spec, *_ in UNSUPPORTED + SUPPORTED]
    picks = [(titled(label), _evidence(titled, label, *spec[:3], **spec[3])) for label, _, spec in rows]
    for (label, asked, _), (item, evidence), text in zip(rows, picks, ExplanationWriter().write(picks)):
        verdict = checker.check_claims(text, item, evidence, asked, min_words=0)
        assert verdict.ok, (label, text, verdict.problems)


# ------------------------------------------------------------------ each rule on hand-made sentences about Fargo
# (fargo_case: Heat liked, 79 of its 118 fans; 508 ratings = viewers, mean 4.2 of 5; rank 3 of 1,682; top 1% by
# audience, top 4% by rating; crime asked for)
GOOD = [
    "It is number 3 of 1,682 titles by audience, the crime film you asked for, and its 508 ratings average 4.2.",
    "Rated 4.2 out of 5 by 508 viewers and watched by 508 viewers, it is the crime film you asked for.",
    "A 1996 crime film you asked for, in the top 4% by rating and the top 1% of the catalog by audience.",
    "It is a crime film, as you asked, and 79 of the 118 fans of Heat (1995) loved it too.",
    "As a crime film, it fits the genres you asked for, and 79 of the 118 fans of Heat (1995) loved it too.",
    "Of the genres you asked for, it has Crime, and 79 of the 118 fans of Heat (1995) loved it as well.",
    "It is Fargo (1996), a crime film you asked for, loved by 79 of the 118 fans of Heat (1995).",
    "A highly rated crime film you asked for: its 508 ratings average 4.2 out of 5, in the top 4% by rating.",
    "You rated Heat (1995) highly, and 79 of its 118 fans also loved this crime film, the genre you asked for.",
    "Fans of Heat (1995) are 1.6 times as likely to love it, and it is the crime film you asked for.",
]


@pytest.mark.parametrize("text", GOOD)
def test_numbers_and_references_in_their_roles_pass(fargo_verdict, text):
    verdict = fargo_verdict(text)
    assert verdict.ok, verdict.problems


BAD = [
    # a true number in the wrong role
    ("It is the crime film you asked for, and 1,682 viewers watched it, rating it 4.2 out of 5 on average.",
     "1,682 is stated out of its role: in the evidence it is the catalog size"),
    ("It is the crime film you asked for, loved by the top 3 viewers, and its 508 ratings average 4.2.",
     "3 is stated out of its role"),
    ("It is the crime film you asked for, and 1996 is when its 508 viewers rated it 4.2 out of 5.",
     "1996 is stated out of its role"),
    ("It is the crime film you asked for, a 4-star pick that 79 of the 118 fans of Heat (1995) loved.",
     "4 is glued into a word"),
    ("Its rating is 4.2 out of 5, and it has an average rating of 4.2 out of 5, the crime you asked for.",
     "states 4.2 more often than the evidence holds it"),
    # "you asked for" attached to what was not asked
    ("It is the film you asked for, rated 4.2 out of 5, and 79 of the 118 fans of Heat (1995) loved it.",
     "says you asked for Fargo (1996) itself"),
    ("It suits the 508 viewers you asked for, and 79 of the 118 fans of Heat (1995) loved this crime film.",
     "ties a catalog statistic ('viewers')"),
    ("It is a thriller, as you requested, and 79 of the 118 fans of Heat (1995) loved it too.",
     "says you asked for thriller"),
    ("As a 1996 thriller, it fits the genres you asked for, and 79 of the 118 fans of Heat (1995) loved it.",
     "says you asked for thriller"),
    ("It is in the top 4% of the catalog you asked for, and 79 of the 118 fans of Heat (1995) loved it.",
     "ties a catalog statistic"),
    ("It is a crime film from 1996, the year you asked for, and 79 of the 118 fans of Heat (1995) loved it.",
     "says you asked for years"),
    # the viewer's own rating
    ("It is the crime film you asked for, and you rate it 4.2 out of 5, like 79 of the 118 fans of Heat (1995).",
     "the viewer's own rating"),
    ("It is a crime film, and you're in the top 1% of the catalog by rating with 508 viewers.",
     "says what you are or have"),
    ("It is the crime film you asked for, and you have 508 viewers watching it, rated 4.2 out of 5.",
     "says what you are or have"),
    # title identity
    ("You liked Heat (1995), and as a crime film, it is Heat, loved by 79 of its 118 fans.",
     "says Fargo (1996) is Heat (1995)"),
    ("You want to watch The Dose of Fargo, the crime film you asked for, rated 4.2 out of 5 by 508 viewers.",
     "invents a title around 'Fargo (1996)'"),
    ("Fargo (1996) is the film you asked for, rated 4.2 out of 5 by 508 viewers in the catalog.",
     "says you asked for Fargo (1996) itself"),
    # "no other genre"
    ("It is a crime film with no other genre, as you asked, loved by 79 of the 118 fans of Heat (1995).",
     "says it has no other genre, but Fargo (1996) is also drama, thriller"),
]


@pytest.mark.parametrize("text, problem", BAD)
def test_claims_out_of_their_roles_are_rejected(fargo_verdict, text, problem):
    verdict = fargo_verdict(text)
    assert not verdict.ok and any(problem in p for p in verdict.problems), verdict.problems


def test_a_bound_of_the_asked_years_is_not_the_picks_year(checker, plain_case):
    four, evidence = plain_case  # Four Rooms (1995), thriller asked for
    nineties = evidence.model_copy(update={"satisfies": Satisfied(genres=["Thriller"], asked_genres=1, year_min=1990,
                                                                  year_max=1999)})
    ok = "A thriller from 1995, inside the 1990 to 1999 range you asked for, rated 3.0 out of 5 by 90 viewers."
    assert checker.check_claims(ok, four, nineties, ["Thriller"]).ok, checker.check_claims(ok, four, nineties).problems
    wrong = "It is a thriller from 1999, the years you asked for, rated 3.0 out of 5 by its 90 viewers."
    verdict = checker.check_claims(wrong, four, nineties, ["Thriller"])
    assert any("1999 is stated out of its role" in p for p in verdict.problems), verdict.problems


def test_a_general_reference_needs_something_of_the_request(checker, plain_case):
    four, evidence = plain_case
    text = "It is one of the films you asked for, rated 3.0 out of 5 by its 90 viewers in the catalog."
    assert checker.check_claims(text, four, evidence, ["Thriller"]).ok  # it is the thriller asked for
    nothing = evidence.model_copy(update={"satisfies": Satisfied()})
    verdict = checker.check_claims(text, four, nothing)
    assert any("refers to your request, but the evidence shows nothing" in p for p in verdict.problems), verdict.problems


def test_only_a_title_the_viewer_named_is_what_they_asked_for(checker, fargo_case):
    fargo, evidence = fargo_case
    text = "You mentioned Heat (1995), and 79 of its 118 fans also loved this crime film, rated 4.2 out of 5."
    assert checker.check_claims(text, fargo, evidence, ["Crime"]).ok  # Heat is a title the viewer liked
    history = evidence.model_copy(update={
        "connections": [c.model_copy(update={"relation": "history"}) for c in evidence.connections],
        "shared_genres": []})
    verdict = checker.check_claims(text, fargo, history, ["Crime"])
    assert any("ties Heat (1995) to your request" in p for p in verdict.problems), verdict.problems


def test_an_avoided_genre_may_be_named_with_the_request(checker, fargo_case):
    fargo, evidence = fargo_case
    avoiding = evidence.model_copy(update={"satisfies": Satisfied(genres=["Crime"], asked_genres=1,
                                                                  avoided_genres=["Comedy"])})
    text = "It has no comedy, which you wanted to avoid, and it is the crime film you asked for, rated 4.2 out of 5."
    assert checker.check_claims(text, fargo, avoiding, ["Crime"]).ok, checker.check_claims(text, fargo, avoiding).problems


def test_praise_and_no_other_genre_need_the_evidence(checker, plain_case):
    four, evidence = plain_case  # Four Rooms: Thriller only, rated 3.0 (not top-10%)
    only = "It is the thriller you asked for, with no other genre, rated 3.0 out of 5 by 90 viewers."
    assert checker.check_claims(only, four, evidence, ["Thriller"]).ok
    praised = "A highly rated thriller you asked for, rated 3.0 out of 5 by its 90 viewers in the catalog."
    verdict = checker.check_claims(praised, four, evidence, ["Thriller"])
    assert "praise 'highly rated' needs a top-10% rating in the evidence" in verdict.problems, verdict.problems
