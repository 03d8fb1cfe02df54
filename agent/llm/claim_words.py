"""The word lists of the strict claim check (agent/llm/claims.toml) and the word-level helpers every part of the check
shares: counting words, reading numbers, comparing word n-grams, finding generic phrases, a title without its year.
"""
from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from agent.llm.grounding import GENRE_WORDS, canonical_genre

NGRAM = 5  # two explanations of one reply may not share a sequence of this many words
_COUNTED = re.compile(r"[\w'’\-.,/%]+")
# a number as a sentence states it: "1,682", "4.2", "67%", "3rd" (group 1: the digits, group 2: an ordinal suffix)
NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(st|nd|rd|th)?(?![\w])")


@dataclass(frozen=True)
class ClaimWords:
    """The word lists of agent/llm/claims.toml."""

    vocabulary: frozenset[str]
    top_rated: frozenset[str]
    most_watched: frozenset[str]
    audience: frozenset[str]
    awards: frozenset[str]
    generic: tuple[str, ...]
    request_references: tuple[str, ...]
    genre_words: dict[str, tuple[str, ...]]

    @classmethod
    @lru_cache(maxsize=None)
    def load(cls) -> "ClaimWords":
        table = tomllib.loads(resources.files(__package__).joinpath("claims.toml").read_text(encoding="utf-8"))
        vocab = table["vocabulary"]
        words = {w for group in vocab.values() for phrase in group for w in phrase.split()}
        praise = table["praise"]
        return cls(vocabulary=frozenset(words), top_rated=frozenset(praise["top_rated"]),
                   most_watched=frozenset(praise["most_watched"]), audience=frozenset(praise["audience"]),
                   awards=frozenset(praise["awards"]), generic=tuple(table["generic"]["phrases"]),
                   request_references=tuple(table["request"]["references"]),
                   genre_words={k.lower(): tuple(v) for k, v in table["genre_words"].items()})


def number_value(text: str) -> str:
    """A stated number as `Evidence.numbers` writes it: "1,682" -> "1682", "4.0" -> "4", "3.2" -> "3.2"."""
    value = float(text.replace(",", ""))
    return str(int(value)) if value.is_integer() else f"{value:g}"


def bare_title(title: str) -> str:
    """"Heat (1995)" -> "Heat"."""
    return re.sub(r"\s*\(\d{4}\)$", "", title)


def word_count(text: str) -> int:
    return len([w for w in _COUNTED.findall(text) if re.search(r"[A-Za-z0-9]", w)])


def words_of(text: str) -> list[str]:
    """Lower-case words, punctuation dropped (for n-gram comparisons)."""
    return re.findall(r"[a-z0-9]+(?:['’][a-z]+)?", text.lower().replace("’", "'"))


def ngrams(text: str, n: int = NGRAM) -> set[tuple[str, ...]]:
    words = words_of(text)
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def shared_ngram(text: str, others: Iterable[str], n: int = NGRAM,
                 titles: Iterable[str] = ()) -> tuple[str, ...] | None:
    """The first `n`-word sequence `text` shares with any of `others`, or None. Each of `titles` (with its year in
    brackets, if written) counts as one word: a name said again in a reply is no phrase repeated."""
    titles = sorted(set(titles), key=len, reverse=True)
    mine = ngrams(_as_one_word(text, titles), n)
    for other in (_as_one_word(o, titles) for o in others):
        common = mine & ngrams(other, n)
        if common:
            return sorted(common)[0]
    return None


def _as_one_word(text: str, titles: Sequence[str]) -> str:
    for n, title in enumerate(titles):
        text = re.sub(r"(?<!\w)" + re.escape(title) + r"(?:\s*\(\d{4}\))?(?!\w)", f" title{n} ", text,
                      flags=re.IGNORECASE)
    return text


def generic_phrases(text: str, words: ClaimWords | None = None) -> tuple[str, ...]:
    words = words or ClaimWords.load()
    low = " ".join(text.lower().replace("’", "'").split())
    return tuple(p for p in words.generic if re.search(r"(?<![\w-])" + re.escape(p) + r"(?![\w-])", low))


def genres_named(low: str) -> list[str]:
    """The canonical genre each genre word of lower-case `low` names, in order ("rom-com" names two)."""
    words = _genre_words()
    return [genre for m in _genre_pattern().finditer(low) for genre in words[m.group(0)]]


@lru_cache(maxsize=1)
def _genre_words() -> dict[str, tuple[str, ...]]:
    """Every genre word (agent/llm/grounding.py's names and variants, claims.toml's slang) -> the canonical genres it
    names."""
    slang = {w: tuple(canonical_genre(g) for g in genres) for w, genres in ClaimWords.load().genre_words.items()}
    return {**slang, **{w: (canon,) for canon, variants in GENRE_WORDS.items() for w in (canon, *variants)}}


@lru_cache(maxsize=1)
def _genre_pattern() -> re.Pattern:
    keys = sorted(_genre_words(), key=len, reverse=True)
    return re.compile(r"(?<![\w'])(?:" + "|".join(re.escape(k) for k in keys) + r")(?![\w'])")

