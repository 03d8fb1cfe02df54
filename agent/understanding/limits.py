"""Requests the catalog cannot satisfy as asked: say so, and say what was done instead.

"give me 1000 comedies" → the most picks one reply shows; "between 2050 and 2060", "the 1800s" → the
catalog's year range is named and the years are left out (instead of an empty answer, or a silently
dropped number). It reads the message text beside the parser's result, because the parser ignores
numbers it cannot use; it only ever narrows or clears what the parser produced.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from agent.locale import Note
from agent.understanding.model import Preferences, describe_years

_THINGS = (r"films?|movies?|picks?|titles?|recommendations?|suggestions?|options?|results?|ones|comedies|dramas|"
           r"thrillers|westerns|musicals|documentaries|romances|mysteries|cartoons|animations?|shows?")
COUNT = re.compile(rf"\b(\d{{1,9}})\s+(?:[a-z-]+\s+){{0,2}}?(?:{_THINGS})\b|(\d{{1,9}})\s*部", re.IGNORECASE)
CENTURY_OR_DECADE = re.compile(r"\b(?:the\s+)?(\d{2,3})0\s*'?s\b|(\d{2,3})0\s*年代")
YEAR = re.compile(r"(?<![\d.])(1[7-9]\d\d|2[01]\d\d)(?![\d.]|'?s\b|\s*年代)(?!\s*(?:" + _THINGS + r")\b)",
                  re.IGNORECASE)


@dataclass(frozen=True)
class RangeCheck:
    catalog_years: tuple[int, int]  # oldest and newest item
    max_count: int  # most picks one reply shows ([agent] max_count)

    def apply(self, text: str, prefs: Preferences) -> list[Note]:
        """Clamp or clear what cannot be met in `prefs` (in place); returns the notes for the reply."""
        for mention in [t.mention for t in prefs.titles] + list(prefs.unknown_titles):
            if mention:  # "2001: A Space Odyssey" names a film, not a year
                text = re.sub(re.escape(mention), " ", text, flags=re.IGNORECASE)
        return self._count(text, prefs) + self._years(text, prefs)

    def _count(self, text: str, prefs: Preferences) -> list[Note]:
        asked = prefs.count
        if asked is None:
            numbers = [int(a or b) for a, b in COUNT.findall(text)]
            numbers = [n for n in numbers if not _is_year(n)]
            asked = max(numbers, default=None)
        if asked is None or asked <= self.max_count:
            return []
        prefs.count = self.max_count
        return [Note("count_clamped", {"n": self.max_count, "asked": asked})]

    def _years(self, text: str, prefs: Preferences) -> list[Note]:
        lo, hi = self.catalog_years
        mentions = [m.group(0).strip() for m in CENTURY_OR_DECADE.finditer(text)]
        mentions += [m.group(0) for m in YEAR.finditer(text) if not lo <= int(m.group(1)) <= hi]
        asked = " / ".join(dict.fromkeys(mentions))
        if prefs.year_min is not None or prefs.year_max is not None:
            start = prefs.year_min if prefs.year_min is not None else -10**9
            end = prefs.year_max if prefs.year_max is not None else 10**9
            if start <= hi and end >= lo:
                return []  # some catalog years fit: the parser's range stands
            asked = asked or describe_years(prefs.year_min, prefs.year_max)
            prefs.year_min = prefs.year_max = None
        elif all(_inside(m, lo, hi) for m in mentions):
            return []
        return [Note("years_outside", {"first": lo, "last": hi, "asked": asked})]


def _is_year(n: int) -> bool:
    return 1700 <= n <= 2199


def _inside(mention: str, lo: int, hi: int) -> bool:
    """Whether a year ("2050") or decade ("1950s"; "the 1800s" also read as a century) overlaps lo..hi."""
    start = int(re.search(r"\d+", mention).group(0))
    if not re.search(r"s\b|年代", mention):
        return lo <= start <= hi
    end = start + (99 if start % 100 == 0 and not lo <= start <= hi else 9)
    return start <= hi and end >= lo
