"""Numbers written as whole phrases: while the claim-constrained decoder (agent/llm/constrained.py) writes a sentence,
a number may only start one of the pick's statistic phrases ("79 of its 118 fans", "4.2 out of 5", "508 ratings",
"1% of the catalog by audience", "67%", its year) and is then written to the end of that phrase, or start a title
that holds it ("2 Days in the Valley"); a year in brackets after a title is the decoder's own year rule.

Why: number by number, the model let loose among true numbers wrote "(5th104)", "its 101th91 viewers", "(1995.",
"26 of its hundred of 1,682 fans" (`marquee bench explain`, held-out replies of 2026-12-01). Every phrase here is a
true statement of the evidence (retrieval/evidence.py), the way the prompt's fact lines (agent/llm/pick_facts.py)
word it. This is a rule of decoding only: the claim checker (agent/llm/claims.py) judges any wording of a number.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from retrieval.catalog.schema import Item
from retrieval.evidence import Evidence

_NUMBER_START = re.compile(r"(?<![\w.,])\d")
_DETERMINER = re.compile(r"\b(?:its|the|their|his|her|a|an)\s+$")
_PART = re.compile(r"[\d,]+ (?:of|out of|also)\b|[\d,]+/")
_BRACKET_YEAR = re.compile(r"\d{1,4}\)?$|(?:1[89]|20)\d\d\)")  # "(19", "(1995)": a year after a title


def _forms(value: int) -> tuple[str, ...]:
    return (f"{value:,}", str(value)) if value >= 1000 else (str(value),)


def stat_phrases(item: Item, evidence: Evidence) -> tuple[str, ...]:
    """Every phrase (lower case) a number of a sentence about `item` may begin."""
    out: list[str] = []
    for c in evidence.connections:
        verb = "loved" if c.measure == "loved" else "watched"
        groups = ("fans", "viewers") if c.measure == "loved" else ("viewers",)
        for a in _forms(c.also):
            out += [f"{a} of them", f"{a} also {verb}"]
            for f in _forms(c.fans):
                out += [f"{a} of {det} {f} {g}" for det in ("its", "the", "their") for g in groups]
                out += [f"{a} of {f}", f"{a} out of {f}", f"{a}/{f}"]
        for f in _forms(c.fans):
            out += [f"{f} {g} {rest}" for g in groups for rest in (f"who {verb}", "of")]
        out += [f"{c.percent}%", *(f"{c.percent}% of {det} {g}" for det in ("its", "their") for g in groups),
                *(f"{c.percent}% of its {f} {g}" for f in _forms(c.fans) for g in groups),
                f"{c.lift} times as likely"]
    k = evidence.catalog
    if k is not None:
        if k.rating_mean is not None:
            mean = f"{k.rating_mean:.1f}"
            out += [f"{mean} out of {k.rating_scale}", f"{mean}/{k.rating_scale}", f"{mean} on average"]
        for count in _forms(k.rating_count) if k.rating_count else ():
            out += [f"{count} ratings", f"{count} viewers"]
        for viewers in _forms(k.viewers) if k.viewers else ():
            out += [f"{viewers} viewers", f"{viewers} people"]
        for size in _forms(k.catalog_size) if k.catalog_size else ():
            out += [f"{size} titles", f"{size} films", f"{size} in the catalog"]
            for rank in _forms(k.popularity_rank) if k.popularity_rank else ():
                out += [f"{rank} of {size}", *(f"{rank} of {size} {w}" for w in ("titles", "films", "in the catalog"))]
        out += [f"{k.top_percent}%", *(f"{k.top_percent}% {rest}" for rest in (
            "by audience", "by popularity", "of the catalog", "of the catalog by audience"))]
        if k.rating_top_percent is not None:
            p = k.rating_top_percent
            out += [f"{p}%", *(f"{p}% {rest}" for rest in ("by rating", "of the catalog", "of the catalog by rating"))]
    if item.year:
        out += [str(item.year), f"{item.year // 10 * 10}s"]
    s = evidence.satisfies
    out += [str(y) for y in (s.year_min, s.year_max) if y is not None]
    return tuple(sorted(set(out), key=len, reverse=True))


def numbers_open(low: str, phrases: Sequence[str], titles: Iterable[str]) -> bool:
    """Whether each number of `low` (the text so far, lower case) begins one of `phrases` written whole, or a title
    of `titles` (lower case); the last may still be being written."""
    titles = tuple(titles)
    covered = 0
    for m in _NUMBER_START.finditer(low):
        at = m.start()
        if at < covered:
            continue
        rest = low[at:]
        if low[:at].rstrip().endswith("(") and _BRACKET_YEAR.match(rest):
            continue  # a title's year in brackets: constrained.ClaimConstraint._years_here
        if _DETERMINER.search(low, 0, at):  # "its 79 of its 118 fans": a part of a group takes no determiner
            phrases = [p for p in phrases if not _PART.match(p)]
        if any(p.startswith(rest) for p in phrases) or any(t.startswith(rest) for t in titles):
            return True  # the phrase or title being written goes to the end of the text
        whole = [p for p in (*titles, *phrases) if rest.startswith(p) and not rest[len(p):len(p) + 1].isalnum()]
        if not whole:
            return False
        covered = at + max(len(p) for p in whole)
    return True
