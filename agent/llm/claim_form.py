"""The strict claim check's rules about how facts are written (agent/llm/claims.py runs them; the claim-constrained
decoder, agent/llm/constrained.py, enforces the same rules while a sentence is being written):

- Word forms: a word is written in lower case or capitalised ("Crime" at a sentence start), or exactly as a title
  of the pick or its evidence writes it ("McCoy"); a word that only a title supplies ("Brasco", "Gump") keeps the
  title's case, and comes only inside a whole copy of that title. So "The Right StUfF", "theM fans", "Donnie
  brasco" and "You should rate it is a Wonderful Life" are rejected.
- Number statements: an ordinal is the evidence's own, a percentage is one of its percentages, "the 118 fans" /
  "its 508 ratings" is the size of a whole group it holds, and "a of b" / "a out of b" / "a/b" pairs numbers it
  pairs ("12 of its 1,682" — a count against the catalog size — is rejected).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from agent.llm.claim_words import NUMBER, number_value
from retrieval.catalog.schema import Item
from retrieval.evidence import Evidence

_RUN = re.compile(r"[A-Za-z]+")
_TRAILING_RUN = re.compile(r"[A-Za-z]*$")
_NUM = r"(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)"
_PAIR_WORDS = r"\s*(of(?: the| its| their)?|out of|/|in)\s*"  # "79 in 1996" may give a year
PAIR = re.compile(r"(?<![\w.])" + _NUM + _PAIR_WORDS + _NUM + r"(?![\w]|[.,]\d)")
# a pair whose second number is still being written ("12 of its 1,6"): judged on the digits so far
_PAIR_OPEN = re.compile(r"(?<![\w.])" + _NUM + _PAIR_WORDS + r"(\d[\d,.]*)$")
_WHOLE_SET = re.compile(r"\b(?:the|its|their|all)\s+(\d{1,3}(?:,\d{3})+|\d+)\s+(?:fans|viewers|people|admirers|"
                        r"ratings|votes|users|watchers)\b", re.IGNORECASE)
_PERCENT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(?:%|percent\b|per cent\b)")


def _plain(run: str) -> bool:
    """Lower case, or capitalised (one capital first)."""
    return run.islower() or (run[0].isupper() and (len(run) == 1 or run[1:].islower()))


@dataclass(frozen=True)
class WordForms:
    """How the letter runs of a sentence about one pick may be written (see the module docstring)."""

    titles: tuple[str, ...]  # the titles without their years, longest first
    title_runs: frozenset[str]  # every letter run of the titles, as the titles write it
    title_only: frozenset[str]  # lower case: runs only a title supplies (they keep a title's case)
    common: frozenset[str]  # lower case: the runs of the other allowed words

    @classmethod
    def of(cls, titles: Iterable[str], vocabulary: Iterable[str]) -> "WordForms":
        """`titles`: the pick's and its evidence's; `vocabulary`: the words allowed besides titles (lower case)."""
        bare = {re.sub(r"\s*\(\d{4}\)$", "", t) for t in titles}
        runs = {r for t in bare for r in _RUN.findall(t)}
        common = {r for w in vocabulary for r in _RUN.findall(w.lower())}
        return cls(tuple(sorted(bare, key=len, reverse=True)), frozenset(runs),
                   frozenset(r.lower() for r in runs) - common, frozenset(common))

    @cached_property
    def common_prefixes(self) -> frozenset[str]:
        """Only the decoder asks (`run_open`, `inside_title`): built on first use, not for every checked sentence."""
        return frozenset(r[:n] for r in self.common for n in range(1, len(r) + 1))

    def run_ok(self, run: str) -> bool:
        return run in self.title_runs or (_plain(run) and run.lower() not in self.title_only)

    def run_open(self, run: str) -> bool:
        """Whether `run`, a run still being written, can grow into one `run_ok` accepts."""
        return any(t.startswith(run) for t in self.title_runs) or (
            _plain(run) and run.lower() in self.common_prefixes)

    def miswritten(self, text: str) -> list[str]:
        """The words of `text` written in a form no title or sentence uses."""
        return list(dict.fromkeys(r for r in _RUN.findall(text) if not self.run_ok(r)))

    def title_pieces(self, text: str) -> list[str]:
        """Words only a title supplies written outside a whole copy of it ("it is a Wonderful Life")."""
        for title in self.titles:
            text = text.replace(title, " ")
        return list(dict.fromkeys(r for r in _RUN.findall(text) if r.lower() in self.title_only))

    def inside_title(self, text: str) -> bool:
        """While a sentence is written: whether the word it ends in can still be a common word, or the text ends
        inside a copy of a title (so a word only a title supplies comes only with the whole title)."""
        tail = _TRAILING_RUN.search(text).group(0)
        if not tail or tail.lower() in self.common_prefixes:
            return True
        return ends_in_copy(text, self.titles, len(tail))


def ends_in_copy(text: str, titles: Iterable[str], shortest: int = 1) -> bool:
    """Whether `text` ends inside (or at the end of) a copy of one of `titles`, at least `shortest` characters of
    it, begun at the start of a word."""
    return any(text.endswith(t[:k]) and (k == len(text) or not text[-k - 1].isalnum())
               for t in titles for k in range(shortest, min(len(t), len(text)) + 1))


def number_problems(masked: str, item: Item, evidence: Evidence) -> list[str]:
    """Ordinals, percentages, whole groups and "a of b" pairs must be the evidence's own (`masked`: the sentence
    with its titles blanked; plain numbers are agent/llm/grounding.py's)."""
    allowed = evidence.numbers() | ({str(item.year)} if item.year else set())
    problems = []
    for m in NUMBER.finditer(masked):
        if m.group(2) and number_value(m.group(1)) not in allowed:
            problems.append(f"rank {m.group(0)} is not in the evidence of {item.label}")
    percents = evidence.percents()
    for m in _PERCENT.finditer(masked):
        if number_value(m.group(1)) not in percents:
            problems.append(f"{m.group(0)} is not a percentage in the evidence of {item.label}")
    totals = _totals(evidence)
    for m in _WHOLE_SET.finditer(masked):  # "the 118 fans", "its 508 ratings": the whole group, not a part of it
        if number_value(m.group(1)) not in totals:
            problems.append(f"'{m.group(0)}' is not the size of any group in the evidence of {item.label}")
    pairs = evidence.pairs()
    for m in PAIR.finditer(masked):
        a, b = number_value(m.group(1)), number_value(m.group(3))
        if (a, b) not in pairs and not (m.group(2) == "in" and item.year and b == str(item.year)):
            problems.append(f"'{m.group(0)}' pairs numbers the evidence does not pair")
    return problems


def _totals(evidence: Evidence) -> set[str]:
    totals = {str(c.fans) for c in evidence.connections}
    if evidence.catalog is not None:
        k = evidence.catalog
        totals |= {str(k.viewers), str(k.rating_count), str(k.catalog_size)}
    return totals


def pair_open(low: str, item: Item, evidence: Evidence) -> bool:
    """Whether the "a of b" pair `low` ends in (its b still being written) can still become one the evidence pairs;
    True when `low` does not end in one."""
    m = _PAIR_OPEN.search(low)
    if m is None:
        return True
    a, partial = number_value(m.group(1)), m.group(3)
    seconds = [b for x, b in evidence.pairs() if x == a]
    if item.year and m.group(2) == "in":
        seconds.append(str(item.year))
    forms = {f for b in seconds for f in (b, f"{int(b):,}" if b.isdigit() else b)}
    return any(f.startswith(partial) or f == partial.rstrip(".,") for f in forms)
