"""Sentences whose every claim is true but that read garbled: the strict check rejects them too, so the template
stands in, and the claim-constrained decoder (agent/llm/constrained.py) steers around them as it writes. Each rule
is a class of the "awkward" rows of the manual audits (benchmarks/results/eval-explain-audit.md):
- a fact said twice, or circularly: "it is a comedy, as you asked, and it is the comedy you asked for", "as a 1994
  documentary it is Documentary", "as a light mood it fits the light you asked for", "16% of its fans also loved
  this film (16%)", "the 1996 film that is the 1996 thriller";
- "this film shares its 1996 with 18% of its 33 fans": a figure is no thing two films share;
- "You liked Twelve Monkeys (1995) too, …": the "too" of an opening clause refers to nothing; "You liked Twelve
  Monkeys (1995) highly": a rating is high, a liking is not;
- "63 of its 97 fans also loved this film too": "also" and "too" of one thing;
- "with 33 of its 52 fans also loved this film": a "with" phrase has no verb;
- "it is it is": words written twice in a row.

`style_problems(marked, evidence, final)` reads the sentence as `claim_roles.mark_titles` writes it (titles are
marks, so a title's own words and year never count); `final=False` (while writing) judges only whole words.
"""
from __future__ import annotations

import re

from agent.llm.claim_meaning import PEOPLE
from agent.llm.claim_roles import OTHER_MARK
from agent.llm.claim_words import genres_named
from retrieval.evidence import Evidence

_SHARES_FIGURE = re.compile(r"\bshares?\s+(?:its|their|the)\s+(?:[a-z'-]+\s+)?\d")
_TOO_OPENING = re.compile(rf"(?:^|[.;!?]\s+)you\s+(?:also\s+)?(?:liked|loved|rated|enjoyed|watched|adored)\s+"
                          rf"{OTHER_MARK}\d+(?:\s*,?\s*(?:and|or)\s+{OTHER_MARK}\d+)*\s*,?\s*(?:highly\s*,?\s*)?"
                          r"(?:too|as well)\b")
# "63 of its 97 fans also loved this film too": one clause says "also" and "too" of the same thing
_ALSO_TOO = re.compile(r"\balso\s+(?:loved|liked|enjoyed|adored|watched|rated)\s+(?:this|the|it)\b[^.;,]{0,25}?"
                       r"\s(?:too|as well)\b")
_LIKED_HIGHLY = re.compile(rf"\byou\s+(?:also\s+)?(?:liked|loved|enjoyed|watched|adored)\s+{OTHER_MARK}\d+\s+highly\b")
_WITH_VERB = re.compile(rf"\bwith\s+[\d,]+\s+(?:of|out of)\s+(?:its|the|their)\s+[\d,]+\s+(?:[a-z]+\s+)?{PEOPLE}\s+"
                        r"(?:also\s+|too\s+)?(?:loved|liked|enjoyed|watched|adored|saw)\b")
_STUTTER = re.compile(r"\b([a-z']+(?:\s+[a-z']+)?)\s+\1\b")
# a percentage, or a year outside a title: said once
_FIGURE = re.compile(r"(?<![\d,.])(\d+(?:\.\d+)?\s*%|(?:1[89]|20)\d\d)(?![\d,]*\d)")
_AUDIENCE_WORDS = ("family", "families", "kids", "children")
_RULES = ((_SHARES_FIGURE, "garbles what it shares ({!r}): a figure is nothing two films share"),
          (_TOO_OPENING, "opens with 'too' that refers to nothing ({!r})"),
          (_LIKED_HIGHLY, "says you liked a title 'highly' ({!r}): you rated it highly"),
          (_ALSO_TOO, "says 'also' and 'too' of one thing ({!r})"),
          (_WITH_VERB, "gives a 'with' phrase a verb ({!r}): write 'and … loved'"),
          (_STUTTER, "writes words twice in a row ({!r})"))


def style_problems(marked: str, evidence: Evidence, final: bool = True) -> list[str]:
    low = " ".join(marked.lower().split())
    if not final and not re.search(r"[\s.,;:!?)]$", marked):
        low = re.sub(r"[\w'-]+$", "", low)  # the last word may still grow
    problems = [problem.format(m.group(0).strip()) for rule, problem in _RULES for m in [rule.search(low)] if m]
    return problems + _said_twice(low, evidence)


def _said_twice(low: str, evidence: Evidence) -> list[str]:
    """A genre, a mood or audience of the request, a percentage or a year named twice in one sentence (a second
    sentence may say it again: the template's "Like Heat, it is Crime. Of the genres you asked for, it has Crime.")."""
    return list(dict.fromkeys(p for sentence in re.split(r"(?<=[.!?])\s+", low)
                              for p in _said_twice_in(sentence, evidence)))


def _said_twice_in(low: str, evidence: Evidence) -> list[str]:
    said: dict[str, int] = {}
    for m in _FIGURE.finditer(low):
        key = m.group(1).replace(" ", "")
        said[key] = said.get(key, 0) + 1
    for genre in genres_named(low):
        said[genre] = said.get(genre, 0) + 1
    s = evidence.satisfies
    asked_words = {w.lower() for mood in s.moods for w in mood.split() if len(w) > 2}
    if s.audience_genres:
        asked_words.update(_AUDIENCE_WORDS)
    for word in asked_words:
        n = len(re.findall(rf"(?<![\w-]){re.escape(word)}(?![\w-])", low))
        if n:
            said[word] = said.get(word, 0) + n
    return [f"says {what!r} twice" for what, n in said.items() if n > 1]
