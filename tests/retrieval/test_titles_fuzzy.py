"""TitleMatcher on the real MovieLens-100k catalog: known quirks, unknown titles, perturbed titles."""
from __future__ import annotations

import random
import re

import pytest

from retrieval.titles import TitleMatcher, normalise


@pytest.fixture(scope="module")
def matcher(ml100k) -> TitleMatcher:
    return TitleMatcher(ml100k.catalog)


@pytest.mark.parametrize("text, expected", [
    ("star wars", "Star Wars (1977)"),
    ("terminator 2", "Terminator 2: Judgment Day (1991)"),
    ("the terminator", "The Terminator (1984)"),
    ("termnator", "The Terminator (1984)"),
    ("the godfather", "The Godfather (1972)"),
    ("godfather", "The Godfather (1972)"),
    ("Godfather, The", "The Godfather (1972)"),
    ("godfather part ii", "The Godfather: Part II (1974)"),
    ("godfather part 2", "The Godfather: Part II (1974)"),
    ("alien", "Alien (1979)"),
    ("aliens", "Aliens (1986)"),
    ("alien (1979)", "Alien (1979)"),
    ("alien 1997", "Alien: Resurrection (1997)"),
    ("batman", "Batman (1989)"),
    ("se7en", "Seven (Se7en) (1995)"),
    ("wrath of khan", "Star Trek: The Wrath of Khan (1982)"),
    ("dr strangelove", "Dr. Strangelove or: How I Learned to Stop Worrying and Love the Bomb (1963)"),
    ("  USUAL SUSPECTS ", "The Usual Suspects (1995)"),
])
def test_known_titles_resolve(matcher, text, expected):
    hits = matcher.match(text, limit=3)
    assert hits, f"{text!r} matched nothing"
    assert hits[0][0].label == expected
    assert all(hits[i][1] >= hits[i + 1][1] for i in range(len(hits) - 1))


def test_sequels_rank_below_the_original(matcher):
    labels = [item.label for item, _ in matcher.match("alien", limit=5)]
    assert labels.index("Alien (1979)") < labels.index("Alien: Resurrection (1997)")
    godfathers = [item.label for item, _ in matcher.match("the godfather", limit=5)]
    assert godfathers[:2] == ["The Godfather (1972)", "The Godfather: Part II (1974)"]


@pytest.mark.parametrize("text", ["the matrix", "lord of the rings", "harry potter", "asdfgh qwerty", "", "   ",
                                  "!!!", "x" * 10_000, "\x00\x1b[31m"])
def test_unknown_or_junk_text_matches_nothing(matcher, text):
    assert matcher.match(text) == []


def test_limit_and_year_filter(matcher):
    assert len(matcher.match("star trek", limit=2)) == 2
    assert matcher.match("star wars", limit=0) == []
    year_hits = matcher.match("batman (1992)", limit=1)
    assert year_hits[0][0].label == "Batman Returns (1992)"


def _perturb(title: str, rng: random.Random) -> tuple[str, str]:
    """One random realistic corruption of a display title; returns (kind, text)."""
    words = title.split()
    kinds = ["lowercase", "swap", "remove_article", "add_year"]
    if len(words) >= 4:
        kinds.append("drop_word")
    kind = rng.choice(kinds)
    if kind == "lowercase":
        return kind, title.lower()
    if kind == "swap":  # transpose two neighbouring letters inside the longest word
        longest = max(range(len(words)), key=lambda i: len(words[i]))
        w = words[longest]
        if len(w) >= 4:
            i = rng.randrange(1, len(w) - 2)
            words[longest] = w[:i] + w[i + 1] + w[i] + w[i + 2:]
        return kind, " ".join(words)
    if kind == "remove_article":
        return kind, re.sub(r"^(The|A|An) ", "", title)
    if kind == "drop_word":  # drop a word from the middle (keeps the distinguishing head and tail)
        del words[rng.randrange(1, len(words) - 1)]
        return kind, " ".join(words)
    return kind, title  # add_year is applied by the caller (needs the year)


def test_perturbed_titles_top1_accuracy(matcher, ml100k):
    rng = random.Random(20240607)
    items = [it for it in ml100k.catalog if it.year]
    sample = rng.sample(items, 300)
    # Identical labels exist twice in ML-100k (e.g. "Chasing Amy (1997)"): either id is right.
    correct, failures = 0, []
    for item in sample:
        kind, text = _perturb(item.title, rng)
        if kind == "add_year" or rng.random() < 0.2:
            text = f"{text} ({item.year})"
        hits = matcher.match(text, limit=1)
        if hits and hits[0][0].label == item.label:
            correct += 1
        else:
            failures.append((kind, text, item.label, hits[0][0].label if hits else None))
    accuracy = correct / len(sample)
    print(f"\nTitleMatcher top-1 accuracy on {len(sample)} perturbed ML-100k titles: {accuracy:.3f}")
    for failure in failures:
        print("  miss:", failure)
    assert accuracy >= 0.95, failures


def test_normalise_handles_articles_accents_and_numerals():
    assert normalise("Godfather: Part II, The") == "godfather part 2"
    assert normalise("Cité des enfants perdus, La") == "cite des enfants perdus"
    assert normalise("Batman & Robin") == "batman and robin"


def test_suggestions_for_titles_that_do_not_match(matcher):
    assert matcher.match("jurassic world") == []
    assert matcher.suggest("jurassic world")[0].label == "Jurassic Park (1993)"
    assert matcher.suggest("") == []
