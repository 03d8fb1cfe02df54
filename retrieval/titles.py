"""Fuzzy matching of free text ("terminator 2", "the godfather", "termnator", "star wars (1977)") to
catalog items.

MovieLens titles have quirks that plain fuzzy scorers get wrong, so each item is matched through
several normalised *keys* and a small scoring rule on top of rapidfuzz:

- articles are ignored wherever they sit ("Godfather, The" = "The Godfather" = "godfather");
- alternate titles in parentheses and the parts around a colon are keys of their own, scored a
  little lower than the full title, so "alien" prefers "Alien" over "Alien: Resurrection";
- a number in the query ("terminator 2", "part ii" = "part 2") must appear in the title, otherwise the match
  is penalised (the plain fuzzy ratio of "terminator 2" vs "terminator" is 91);
- a year in the query ("alien (1979)", "alien 1979") rewards items of that year and penalises others;
- ties go to the more popular item.
Unknown titles score below `threshold` and return nothing.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from retrieval.catalog.schema import Catalog, Item

_ARTICLES = frozenset({"the", "a", "an", "l", "la", "le", "les", "il", "das", "der", "die", "el"})
# Roman numerals of sequels read as digits ("Part II" = "part 2"); i, v and x stay words ("Malcolm X").
_ROMAN = {"ii": "2", "iii": "3", "iv": "4", "vi": "6", "vii": "7", "viii": "8", "ix": "9"}
_YEAR = re.compile(r"\s*\(?\b(1[89]\d\d|20\d\d)\)?\s*$")
_PARENS = re.compile(r"\(([^()]*)\)")

PART_FACTOR = 0.97  # a key that is only part of the title (before/after ':', alternate title)
PREFIX_FACTOR = 0.9  # the query matches the first words of a longer title
MISSING_NUMBER_PENALTY = 20.0
YEAR_BONUS, YEAR_PENALTY = 3.0, 15.0
SUGGEST_THRESHOLD = 50.0  # loose matches offered as "did you mean" when nothing passes the threshold
PREFILTER = 60  # rapidfuzz shortlist size before the detailed scoring


def normalise(text: str) -> str:
    """Lowercase ASCII words without punctuation or articles: 'Godfather, The' -> 'godfather'."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    text = text.replace("&", " and ").replace("'", "")
    words = re.findall(r"[a-z0-9]+", text)
    return " ".join(_ROMAN.get(w, w) for w in words if w not in _ARTICLES)


def _numbers(text: str) -> set[str]:
    return {w for w in text.split() if w.isdigit()}


@dataclass(frozen=True)
class _Key:
    text: str
    factor: float  # 1.0 for the full title, PART_FACTOR for a part of it


def title_keys(item: Item) -> list[_Key]:
    """The normalised strings an item can be called by."""
    raw_titles = {item.title, item.extra.get("raw_title", item.title)}
    keys: dict[str, float] = {}

    def add(text: str, factor: float) -> None:
        norm = normalise(text)
        if norm and keys.get(norm, 0.0) < factor:
            keys[norm] = factor

    for raw in raw_titles:
        main = _PARENS.sub(" ", raw)  # without alternate titles: "Seven (Se7en)" -> "Seven"
        add(main, 1.0)
        add(raw, 1.0)
        for alt in _PARENS.findall(raw):
            add(alt, PART_FACTOR)
        if ":" in main:
            head, _, tail = main.partition(":")
            add(head, PART_FACTOR)
            add(tail, PART_FACTOR)
    return [_Key(text, factor) for text, factor in keys.items()]


class TitleMatcher:
    """`TitleMatcher(catalog).match("terminator 2")` -> [(Item, score 0..100), ...] best first."""

    def __init__(self, catalog: Catalog, threshold: float = 80.0):
        self.catalog = catalog
        self.threshold = threshold
        self._key_texts: list[str] = []
        self._key_owner: list[tuple[int, float]] = []  # (catalog index, factor) per key
        for index, item in enumerate(catalog):
            for key in title_keys(item):
                self._key_texts.append(key.text)
                self._key_owner.append((index, key.factor))
        self._numbers = [_numbers(" ".join(k.text for k in title_keys(it))) for it in catalog]

    def match(self, text: str, limit: int = 5, threshold: float | None = None) -> list[tuple[Item, float]]:
        """Items whose title matches `text`, best first; empty when nothing scores ≥ threshold."""
        threshold = self.threshold if threshold is None else threshold
        text = (text or "").strip()
        if not text or limit <= 0:
            return []
        year = None
        m = _YEAR.search(text)
        if m and m.start() > 0:  # "2001" alone is a title, not a year
            year, text = int(m.group(1)), text[:m.start()]
        query = normalise(text)
        if not query:
            return []
        best = self._score(query, one_word_prefix=year is not None)
        ranked = []
        for index, score in best.items():
            item = self.catalog.at(index)
            if year is not None:
                score += YEAR_BONUS if item.year == year else -YEAR_PENALTY
            if score >= threshold:
                ranked.append((item, min(100.0, score), item.popularity))
        ranked.sort(key=lambda r: (-r[1], -r[2], r[0].item_id))
        return [(item, round(score, 2)) for item, score, _ in ranked[:limit]]

    def suggest(self, text: str, limit: int = 3) -> list[Item]:
        """Loose matches for "did you mean …?" messages when `match` found nothing."""
        return [item for item, _ in self.match(text, limit, threshold=SUGGEST_THRESHOLD)]

    def best(self, text: str) -> Item | None:
        hits = self.match(text, limit=1)
        return hits[0][0] if hits else None

    def _score(self, query: str, one_word_prefix: bool = False) -> dict[int, float]:
        """Best score per catalog index over the shortlisted keys. A one-word query counts as the start of a
        longer title only with a year ("batman (1992)"): alone, "weekend" is not "Weekend at Bernie's"."""
        shortlist = process.extract(query, self._key_texts, scorer=fuzz.WRatio, limit=PREFILTER)
        shortlist += process.extract(query, self._key_texts, scorer=fuzz.ratio, limit=PREFILTER // 2)
        q_numbers = _numbers(query)
        q_len = len(query.split())
        best: dict[int, float] = {}
        for key_text, _, key_pos in shortlist:
            index, factor = self._key_owner[key_pos]
            score = fuzz.ratio(query, key_text) * factor
            words = key_text.split()
            if len(words) > q_len and (q_len > 1 or one_word_prefix):  # "dr strangelove"
                score = max(score, fuzz.ratio(query, " ".join(words[:q_len])) * PREFIX_FACTOR * factor)
            if q_numbers - self._numbers[index]:
                score -= MISSING_NUMBER_PENALTY
            if score > best.get(index, -1.0):
                best[index] = score
        return best
