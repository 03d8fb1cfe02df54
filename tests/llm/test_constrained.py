"""Claim-constrained decoding (agent/llm/constrained.py): continuations the claim checker would reject cannot be
chosen, sentences it passes are never blocked, and through the real model constrained samples pass far more often."""
from __future__ import annotations

import re

import pytest

from agent.llm.constrained import ClaimConstraint, RowConstraints
from retrieval.evidence import Evidence, Satisfied


@pytest.fixture(scope="module")
def fargo(checker, fargo_case):
    item, evidence = fargo_case
    return item, evidence, ClaimConstraint.for_pick(checker, item, evidence)


@pytest.fixture(scope="module")
def four_rooms(checker, plain_case):
    item, evidence = plain_case
    return item, evidence, ClaimConstraint.for_pick(checker, item, evidence)


@pytest.mark.parametrize("written, token, allowed", [
    ("It is a", " crime", True),
    ("It is a", " comedy", False),  # a genre Fargo lacks
    ("It is a", " rom", False),  # cannot even start "rom-com"
    ("It is a cri", "me", True),  # a word being written may be the start of one of the pick's words
    ("It is an", " acclaimed", True),  # praise earned by a top-4% rating
    ("It was made by", " Joel", False),  # a person
    ("It follows a", " police", False),  # a plot
    ("It won an", " award", False),
    ("Its ratings average", " 4.2", True),
    ("Its ratings average", " 4.7", False),  # a number the evidence does not hold
    ("It is number 3 of", " 1,682", True),
    ("It is number 3 of", " 1,683", False),
    ("Since you liked Heat (", "1995", True),  # a title's own year right after it
    ("Since you liked Fargo (", "1995", False),  # ... but not another title's
    ("Of the fans of Heat, ", "79", True),  # a connection's count once its title is written ...
    ("Of its fans, ", "79", False),  # ... not before (the checker: counts "without naming it")
    ("Since you liked Heat Wave (", "1995", False),  # a bracketed year only after a whole title
    ("Since you liked", " Heat", True),  # what the viewer did: only a title they liked, rated or named
    ("Since you liked", " Fargo", False),  # not the pick itself
    ("Since you liked", " comedies", False),
    ("It came out in", " 1995", False),  # a bare year that is not the pick's
    ("It came out in", " 1996", True),
    ("You will", " love", False),  # completes a generic phrase
    ("79 fans loved it and 118 fans loved", " it", False),  # repeats a word 3-gram
    ("It is a crime film.", "Fans", False),  # punctuation glued to the next word
    ("It is a crime", " <b>", False),  # markup
    ("It is a crime", "\n", False),
    ("It is in the top 4", "-year", False),  # a number glued into a word (the checker's role rule)
    ("It is in the top 4", "%", True),
])
def test_a_continuation_is_allowed_only_when_the_checker_could_pass_it(fargo, written, token, allowed):
    assert fargo[2].allows(written, token) is allowed


def test_praise_and_popularity_words_need_the_evidence(four_rooms):
    constraint = four_rooms[2]
    assert not constraint.allows("It is an", " acclaimed")  # rated 3.0, not top-10%
    assert not constraint.allows("It is a", " popular")  # 23% by audience, not top-10%
    assert constraint.allows("It is a", " thriller")


GOOD = [  # sentences the claim checker passes (tests/llm/test_claims.py)
    "Since you liked Heat (1995), note that 79 of its 118 fans also loved this crime thriller, rated 4.2 out of 5.",
    "Fans of Heat (1995) loved it too: 79 of 118 of them, and it is the crime film you asked for.",
    "It is the crime film you asked for, and its 508 ratings average 4.2 out of 5, in the top 4% of the catalog.",
]


@pytest.mark.parametrize("text", GOOD)
def test_sentences_the_checker_passes_are_never_blocked(checker, fargo, text):
    item, evidence, constraint = fargo
    assert checker.check_claims(text, item, evidence, ["Crime"]).ok
    pieces = re.findall(r"\s*[A-Za-z]+|\s*\d|\s*[^\sA-Za-z\d]", text)  # word-, digit- and symbol-sized tokens
    written = ""
    for piece in pieces:
        assert constraint.allows(written, piece), (written, piece)
        written += piece
    assert constraint.may_end(written)


def test_a_sentence_citing_only_statistics_may_not_end_where_personal_evidence_exists(checker, catalog, fargo):
    item, evidence, constraint = fargo
    text = "An acclaimed crime drama: its 508 ratings average 4.2 out of 5, among the top 4% of the catalog by rating."
    assert checker.check_claims(text, item, evidence, ["Crime"]).ok  # true, but says nothing about the viewer
    assert not constraint.may_end(text)
    anonymous = evidence.model_copy(update={"connections": [], "shared_genres": [], "satisfies": Satisfied()})
    assert ClaimConstraint.for_pick(checker, item, anonymous).may_end(text)  # nothing personal to cite


def test_a_row_may_end_only_after_a_whole_sentence_that_cites_evidence(fargo):
    constraint = fargo[2]
    assert not constraint.may_end("It is a crime film you asked for")  # no full stop
    assert not constraint.may_end("It is a crime film.")  # too short
    assert not constraint.may_end("It is a crime film with drama and thriller in it, and it is a film for this evening.")
    assert constraint.may_end("It is the crime film you asked for, and its 508 ratings average 4.2 out of 5.")


class _Tokenizer:
    """Five tokens: enough to see which one the mask leaves."""

    pieces = [" comedy", " crime", " Joel", ".", "<eos>"]

    def __len__(self):
        return len(self.pieces)

    def decode(self, ids):
        return "".join(self.pieces[i] for i in ids)


@pytest.mark.parametrize("written, token, allowed", [
    ("It has 1,682", " viewers", False),  # the catalog size is no viewer count
    ("It is number 3 of", " 1,682", True),
    ("It is number 3 of 1,682", " titles", True),
    ("It is watched by 508", " viewers", True),
    ("It is watched by 508 viewers, rated 4.2 out of 5; another 4.2", " out", False),  # a statistic said twice
])
def test_numbers_are_written_only_in_their_roles(fargo, written, token, allowed):
    assert fargo[2].allows(written, token) is allowed


@pytest.mark.parametrize("written, token, allowed", [
    ("It is a crime film, as you", " asked", True),  # crime was asked for
    ("It is a thriller, as you", " asked", False),  # a genre of Fargo, but not one asked for
    ("It is rated 4.2 out of 5, as you", " asked", False),  # a statistic nobody asked for
    ("It is the film you", " asked", False),  # the pick itself, which the viewer did not name
    ("It is a crime film, and you're in", " the", False),  # what the viewer is: no fact of the evidence
    ("It is a crime film, and you've", " rated", True),
])
def test_a_request_reference_is_written_only_about_what_was_asked(fargo, written, token, allowed):
    assert fargo[2].allows(written, token) is allowed


def test_a_sentence_may_not_end_on_a_number_out_of_its_role(fargo):
    constraint = fargo[2]
    assert constraint.may_end("You liked Heat (1995), and this crime film is rated 4.2 out of 5 by 508 viewers.")
    assert not constraint.may_end("You liked Heat (1995), and this crime film is rated 4.2 out of 5 by 508 viewers "
                                  "and rated 4.2.")  # the same statistic twice
    assert not constraint.may_end("You liked Heat (1995), and this crime film is rated 4.2 out of 5 by the under "
                                  "1996.")  # a year that reads as no year


@pytest.mark.parametrize("greedy", [True, False])
def test_the_mask_leaves_only_allowed_tokens(fargo, greedy):
    import torch

    rows = RowConstraints(_Tokenizer(), [fargo[2], None], eos=4)
    logits = torch.tensor([5.0, 1.0, 4.0, 0.0, -1.0])
    masked = rows.restrict(logits.clone(), 0, "It is a", greedy)
    assert int(masked.argmax()) == 1  # " crime": the best allowed token
    assert torch.isinf(masked[[0, 2]]).all()  # " comedy" and " Joel" can never be drawn
    assert torch.equal(rows.restrict(logits.clone(), 1, "It is a", greedy), logits)  # a free row is untouched


def test_when_nothing_is_allowed_the_row_ends(fargo):
    import torch

    rows = RowConstraints(_Tokenizer(), [fargo[2]], eos=4)
    masked = rows.restrict(torch.tensor([5.0, 1.0, 4.0, 3.0, 2.0]), 0, "It won an award", True)
    assert int(masked.argmax()) == 4 and torch.isinf(masked[:4]).all()


def test_with_a_floor_a_greedy_row_ends_rather_than_write_a_forced_word(fargo):
    """The one allowed token (" crime") is far below the model's own choice: under a floor of -6 the row ends (its
    draft would be rejected as garbled either way); without one, the decoder writes it."""
    import torch

    logits = torch.tensor([20.0, 1.0, 19.0, 0.0, -1.0])  # " crime" at log-probability about -19
    assert int(RowConstraints(_Tokenizer(), [fargo[2]], eos=4).restrict(logits.clone(), 0, "It is a", True)
               .argmax()) == 1
    floored = RowConstraints(_Tokenizer(), [fargo[2]], eos=4, floor=-6.0)
    assert int(floored.restrict(logits.clone(), 0, "It is a", True).argmax()) == 4
    near = torch.tensor([5.0, 1.0, 4.0, 0.0, -1.0])  # " crime" at about -4.4: above the floor, still written
    assert int(floored.restrict(near.clone(), 0, "It is a", True).argmax()) == 1


@pytest.mark.slow
def test_constrained_samples_rarely_hold_what_the_decoder_enforces(llm, checker, catalog, titled, log):
    """A few fixed picks, 4 samples each, same seed, the base model at temperature 0.7. What the decoder enforces (a
    word outside the pick's vocabulary, a person, praise it does not earn, an award, a generic phrase, markup, a number
    out of its role, a statistic said twice) is no more common in constrained samples than in free ones: 10 of 24
    against 11 of 24 on 2026-12-02 (4 of 24 on 2026-12-01, before the rules of agent/llm/claim_meaning.py grew and
    on other numerics: sampled rows part with them). It is far from absent, because a sampled row with no allowed
    token left ends where it stands (most of the 10: a number whose role the cut leaves open, a word cut in two),
    a dead end the checker then rejects; backing off instead is open work (issue #13's note). More
    constrained samples pass the checker; how many more is not asserted: its request rules
    (agent/llm/claim_requests.py) are not enforced while decoding, and the base model at this temperature breaks them
    often (`marquee bench explain` measures the served explainer)."""
    from agent.llm.explainer import finish_text
    from agent.llm.generation import Sampling, generate_rows
    from agent.llm.pick_facts import PickContext, explain_fields
    from agent.llm.prompting import constant_prefix, render_chat

    labels = ["Fargo (1996)", "Star Wars (1977)", "Toy Story (1995)", "Heat (1995)", "Clueless (1995)",
              "Sense and Sensibility (1995)"]
    picks = []
    for label in labels:
        item = titled(label)
        index = catalog.index_of(item.item_id)
        genre = item.genres[0]
        evidence = Evidence(item_id=item.item_id, connections=log.audience(index)[:1], catalog=log.stats(index),
                            satisfies=Satisfied(genres=[genre], asked_genres=1))
        picks.append(PickContext(item, evidence, request=f"some {genre.lower()} films", wishes=f"genres: {genre}",
                                 asked_genres=(genre,)))
    tok = llm.tokenizer
    texts = [render_chat(tok, "explain", **explain_fields(p)) for p in picks]
    sampling = Sampling(temperature=0.7, top_p=0.95, samples=4, seed=3)

    def run(constraints):
        out = []
        for g in generate_rows(llm, texts, 64, prefix=constant_prefix(tok, "explain"), sampling=sampling,
                               constraints=constraints):
            text = finish_text(g.text, g.finished, 400, 2)
            p = picks[g.row]
            out.append((g.finished, checker.check_claims(text or "", p.item, p.evidence, p.asked_genres)))
        return out

    free = run(None)
    bound = run([ClaimConstraint.for_pick(checker, p.item, p.evidence) for p in picks])
    assert len(free) == len(bound) == 4 * len(picks)
    free_pass, bound_pass = sum(v.ok for _, v in free), sum(v.ok for _, v in bound)
    assert bound_pass > free_pass, (free_pass, bound_pass)
    banned = ("unsupported word", "names someone", "praise", "award claim", "generic phrase", "markup")

    def enforced(verdicts):
        return sum(any(p.startswith(banned) or "out of its role" in p or "said twice" in p for p in v.problems)
                   for _, v in verdicts)

    assert enforced(bound) <= enforced(free), (enforced(bound), enforced(free))


def test_a_ban_of_another_kind_never_leaves_a_row_stuck(fargo):
    """The reply's distinct n-gram bans may forbid the only allowed token (two rows writing " (199"): the row then
    takes it from the logits before those bans rather than ending mid-title."""
    import torch

    rows = RowConstraints(_Tokenizer(), [fargo[2]], eos=4)
    unbanned = torch.tensor([5.0, 1.0, 4.0, 0.0, -1.0])
    banned = unbanned.clone()
    banned[[1, 3]] = float("-inf")  # " crime" and "." banned by another rule: nothing allowed is left
    masked = rows.restrict(banned, 0, "It is a", True, unbanned)
    assert int(masked.argmax()) == 1


@pytest.mark.parametrize("written, token", [
    ("You liked Heat (1995), and 79 of its 118", "th"),  # "(5th104)", "101th91 viewers" on held-out replies
    ("You liked Heat (1995), and 79 of its 118 fans loved this film, as did 508", " fans"),  # 508 watched or rated
    ("It is rated 4.2 out of 5 by 508", "."),  # "by 508." counts nothing: "508 viewers" or "508 ratings"
    ("You liked Heat (1995), and 79 of its hundred of", " 1"),  # the catalog size inside a fans phrase
])
def test_the_decoder_writes_a_number_only_as_a_whole_statistic_phrase(fargo, written, token):
    assert not fargo[2].allows(written, token)


def test_statistic_phrases_and_titles_with_numbers_are_written_whole(checker, titled, fargo):
    from retrieval.evidence import Evidence

    valley = titled("2 Days in the Valley (1996)")
    constraint = ClaimConstraint.for_pick(checker, valley, Evidence(item_id=valley.item_id))
    assert constraint.allows("It is", " 2") and constraint.allows("It is 2", " Days")  # the start of its title
    assert not constraint.allows("It is 2", " of")
    text = ("You liked Heat (1995), and 79 of its 118 fans also loved this film (67%), rated 4.2 out of 5 by 508 "
            "viewers.")
    pieces = re.findall(r"\s*[A-Za-z]+|\s*\d|\s*[^\sA-Za-z\d]", text)
    for n in range(len(pieces)):
        assert fargo[2].allows("".join(pieces[:n]), pieces[n]), ("".join(pieces[:n]), pieces[n])


def test_a_part_of_a_group_takes_no_determiner_and_a_bracketed_year_follows_its_title(fargo):
    constraint = fargo[2]
    assert not constraint.allows("You liked Heat (1995), and its", " 79")  # "its 12 of its 44 fans" (audit)
    assert constraint.allows("You liked Heat (1995), and", " 79")
    assert constraint.allows("You liked Heat (1995), and its", " 118")  # "its 118 fans" is a whole group
    assert not constraint.allows("You liked Heat (1995), and this film (199", "6")  # "(1995." on held-out replies
    assert constraint.allows("You liked Heat (199", "5")


def test_a_title_being_copied_is_recognised_for_the_distinct_phrase_ban(fargo):
    constraint = fargo[2]
    assert constraint.copying_title("You liked Hea") and constraint.copying_title("You liked Heat (19")
    assert constraint.copying_title("You liked Heat (1995)")
    assert not constraint.copying_title("You liked He")  # too short to tell
    assert not constraint.copying_title("You liked Heat (1995), and")
    assert not constraint.copying_title("You liked Reheat")  # not at a word start
