"""The strict claim check's rules about what a true fact is said to be (agent/llm/claims.py runs them): a number
and a title may appear in a sentence only in the role the evidence gives them (what a request reference may attach
to: agent/llm/claim_requests.py).

- Numbers: every number of the evidence (retrieval/evidence.py) has a role (the viewer count, the rating, the
  popularity rank, the catalog size, a top percentage, a connection's fans / also / percent / lift, the pick's year,
  a bound of the asked years) and must be written with words of that role around it: a viewer count before
  "viewers", a rating before "out of 5" or after "rated", the catalog size only after "of" or before "titles", a
  percentage with "%", a year as a year ("from 1987", "a 1987 film"). "1,682 viewers" (the catalog size as viewers),
  "the top 141 viewers" (a rank as viewers), a number glued into a word ("27-year-older") and one statistic stated
  twice are rejected. Where two roles share a value, either role's words will do.
- Titles: "it is <Title>" names the pick; capitalised words glued around a known title invent a film ("The Dose of
  Amistad").
- Praise phrases ("highly rated") need a top-decile rating; "no other genre" needs the genres named to be all of the
  pick's.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import regex  # partial matching: whether the words after a number being written can still read as its role

from agent.llm.claim_words import NUMBER, ClaimWords, number_value
from agent.llm.grounding import GroundingChecker, canonical_genre
from retrieval.catalog.schema import Item
from retrieval.evidence import Evidence

_GLUED_BEFORE = re.compile(r"[A-Za-z]-$")
_GLUED_AFTER = re.compile(r"^(?:st|nd|rd|th)?-[A-Za-z]")

# the words a number of each role is written with, after it (`_AFTER`) or before it (`_BEFORE`), lower case
_PEOPLE = (r"(?:[a-z]+\s+)?(?:viewers?|people|persons?|fans?|admirers?|users?|watchers?|moviegoers|filmgoers|folks|"
           r"others|raters|voters)\b|of\s+them\b|who\b")
_COUNT_VERB = (r"(?:also\s+|too\s+|have\s+|had\s+|has\s+|did\s+)?(?:rated|rate|loved|love|liked|like|enjoyed|enjoy|"
               r"adored|watched|watch|saw|seen|felt|did|gave|went|came|put|picked|chose|returned|scored|voted)\b")
_AFTER = {
    "viewers": f"{_PEOPLE}|{_COUNT_VERB}",
    "rating_count": rf"{_PEOPLE}|{_COUNT_VERB}|(?:[a-z]+\s+)?(?:ratings?|votes?|reviews?|scores?)\b",
    "rating_mean": r"out\s+of\b|/|of\s+\d|stars?\b|points?\b|on\s+average\b|average\b|mean\b|rating\b|score\b",
    "rank": r"of\s+\d|in\s+popularity\b|most\b|by\s+(?:audience|popularity|views|viewers)\b",
    "catalog_size": r"(?:titles|films|movies|entries|picks)\b|in\s+(?:the|its)\s+catalog",
    "percent": r"\s*(?:%|percent\b|per\s+cent\b)",
    "fans": f"{_PEOPLE}|{_COUNT_VERB}",
    "also": rf"(?:of|out\s+of|among|in)\b|/|too\b|{_PEOPLE}|{_COUNT_VERB}",
    "lift": r"(?:times|x)\b",
}
_BEFORE = {
    "viewers": r"(?:\bby|\baudience\s+of|\bviewers\s+of|\btotal\s+of|\bcount\s+of)\s+"
               r"(?:the\s+|its\s+|all\s+|only\s+|just\s+)?",
    "rating_count": r"(?:\bby|\bfrom|\bacross)\s+(?:the\s+|its\s+|all\s+|only\s+|just\s+)?",
    "rating_mean": r"\b(?:rated|rating|ratings|average|averages|averaged|averaging|mean|score|scored|scores|verdict|"
                   r"rate|rates|gave|give|gives|gets|get|got|earns|earned)\b[^.;!?\d]{0,20}",
    "rating_scale": r"(?:\bout\s+of|/|\bof)\s*",
    "rank": r"(?:\bnumber|\bno\.|#|\brank|\branks|\branked|\branking|\bplace|\bplaced|\bplacing|\bposition|\bspot|"
            r"\bat)\s+(?:it\s+)?(?:at\s+)?(?:number\s+)?",
    "catalog_size": r"(?:\bof|\bout\s+of|\bamong|/)\s*(?:the\s+|all\s+)?",
    "fans": r"(?:\bof|\bout\s+of|\bamong|/)\s*(?:the\s+|its\s+|their\s+|all\s+|those\s+)?",
    "also": r"(?:\bby|\()\s*",
    "year": r"(?:\b(?:from|in|since|year|years|released|dated|circa|a|an|the|its|this|that|between|until|till|"
            r"through|before|after)\s+|\(\s*|(?:1[89]|20)\d\d\s*(?:to|and|-|–|through|until|till)\s*)",
}
_AFTER_RE = {kind: regex.compile(r"\s*(?:" + rx + ")") for kind, rx in _AFTER.items()}  # `.match`: at the start
_BEFORE_RE = {kind: re.compile("(?:" + rx + ")$") for kind, rx in _BEFORE.items()}
_YEAR_AFTER = regex.compile(r"(?:'s\b|\s*\)|\s*(?:to|and|-|–|through|until|till)\s*(?:1[89]|20)\d\d|"
                         r"\s+(?:[a-z'\-]+\s+){0,2}(?:film|films|movie|movies|title|titles|release|picture|feature|"
                         r"pick|entry|one)\b)")
_TOP = re.compile(r"\btop\s*$")  # "the top 2%": after "top" only a percentage
_ROLE_NAMES = {"viewers": "the viewer count", "rating_count": "the number of ratings", "rating_mean": "the rating",
               "rating_scale": "the rating scale", "rank": "the popularity rank", "catalog_size": "the catalog size",
               "percent": "a percentage", "fans": "a count of fans", "also": "a count of fans",
               "lift": "a likelihood ratio", "year": "its year", "asked_year": "a bound of the years you asked for"}
# a bound of the asked years is written as one: "from 1990 to 1999", "before 1980", "1990, the years you asked for"
_ASKED_YEAR_BEFORE = re.compile(r"(?:(?:1[89]|20)\d\d\s*(?:to|and|-|–|through|until|till)|\b(?:between|until|till|"
                                r"before|after|since|up to|through|by|years?|decades?)|\b(?:from|in)\s+the\s+years)"
                                r"\s*$")
_PICK_YEAR_BEFORE = re.compile(r"(?:\b(?:from|in|released|dated|a|an|its|this)\s+|\(\s*)$")
_ASKED_YEAR_AFTER = regex.compile(r"(?:\s*(?:to|and|-|–|through|until|till)\s*(?:1[89]|20)\d\d|\s*(?:on|onwards|"
                               r"(?:or|and)\s+(?:later|earlier|after|before))\b|\s*,?[^.;!?,]{0,30}?\b(?:you\s+"
                               r"(?:asked|requested|wanted|set|named|mentioned|chose)|your\s+(?:request|range|window|"
                               r"years|period)|as\s+requested))")

# ---------------------------------------------------------------------------------------------- titles, praise
PICK_MARK, OTHER_MARK = "titlepick", "titleother"  # how `mark_titles` writes the pick's and the evidence's titles
_IDENTITY = re.compile(r"\b(?:it|this|this film|this movie|this one|this pick|this title|the film|the movie|the pick|"
                       + PICK_MARK + r")\s+(?:is|was|'s)\s+(?:also\s+|really\s+|actually\s+|just\s+|in fact\s+)?"
                       + OTHER_MARK + r"(\d+)\b(?!')")
_MARK = "(" + PICK_MARK + "|" + OTHER_MARK + r"\d+)\b"
_AROUND_LEFT = re.compile(r"((?:\b[A-Z][\w'\-]*\s+(?:(?:of|the|and|in|on|a|an|to|for|with)\s+)*)+)" + _MARK)
_AROUND_RIGHT = re.compile(r"\b" + _MARK + r"\s+((?:(?:of|the|in|on)\s+)*[A-Z][\w'\-]*)")
_STARTS_SENTENCE = re.compile(r"(?:^|[.!?:;\"(]\s*)$")
_PRAISE = re.compile(r"\b(?:highly|well|top|best)[\s-]+(?:rated|regarded|reviewed|scored|received)\b",
                     re.IGNORECASE)
_NO_OTHER = re.compile(r"\b(?:no other genres?|its only genres?|nothing but)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Role:
    kind: str  # a key of _ROLE_NAMES
    value: str  # as `Evidence.numbers` writes it
    owner: str = ""  # the connection's title, for its counts


def number_roles(item: Item, evidence: Evidence) -> list[Role]:
    """Every number of the evidence with its role (one value may hold several)."""
    roles: list[Role] = []
    k = evidence.catalog
    if k is not None:
        held = [("viewers", k.viewers, ""), ("rating_count", k.rating_count, ""), ("rank", k.popularity_rank, ""),
                ("catalog_size", k.catalog_size, ""), ("percent", k.top_percent, "top"),
                ("rating_mean", k.rating_mean, ""), ("rating_scale", k.rating_scale, ""),
                ("percent", k.rating_top_percent, "top by rating")]
        roles += [Role(kind, number_value(str(value)), owner) for kind, value, owner in held if value is not None]
    for c in evidence.connections:
        roles += [Role(kind, number_value(str(value)), c.title)
                  for kind, value in (("fans", c.fans), ("also", c.also), ("percent", c.percent), ("lift", c.lift))]
    s = evidence.satisfies
    if item.year:
        roles.append(Role("year", str(item.year)))
    roles += [Role("asked_year", str(y)) for y in sorted({s.year_min, s.year_max} - {None})]
    return roles


def statement_limits(roles: Sequence[Role]) -> dict[str, int]:
    """How many times each statistic (not a year) may be stated: once per role and owner it holds."""
    years = {r.value for r in roles if r.kind in ("year", "asked_year")}
    holders: dict[str, set] = {}
    for r in roles:
        if r.value not in years:
            holders.setdefault(r.value, set()).add((r.kind, r.owner))
    return {value: len(h) for value, h in holders.items()}


def role_still_open(kinds: Sequence[str], before: str, after: str) -> bool:
    """While a sentence is written: whether a number with these role `kinds`, after `before` (lower case), can
    still be read in one of them once `after` (lower case, the text written after it so far) grows."""
    for kind in kinds:
        if _TOP.search(before) and kind != "percent":
            continue
        if kind in ("year", "asked_year"):
            if _year_still_open(kind, before, after):
                return True
            continue
        rx_before, rx_after = _BEFORE_RE.get(kind), _AFTER_RE.get(kind)
        if rx_before is not None and rx_before.search(before):
            return True
        if rx_after is not None and rx_after.match(after, partial=True):
            return True
    return False


def unearned_praise(text: str, evidence: Evidence) -> str | None:
    """A praise phrase ("highly rated", "top-rated") when the evidence holds no top-decile rating, else None."""
    k = evidence.catalog
    m = _PRAISE.search(text)
    return m.group(0) if m and not (k is not None and k.top_rated) else None


def _year_still_open(kind: str, before: str, after: str) -> bool:
    """`role_still_open` for a year: the words before it, or after it ("1987 horror film", "(1987)"); two whole words
    after it decide (a genre word there is read by the check of the whole sentence)."""
    if kind == "asked_year":
        return bool(_ASKED_YEAR_BEFORE.search(before) or _ASKED_YEAR_AFTER.match(after, partial=True))
    if _BEFORE_RE["year"].search(before) or _YEAR_AFTER.match(after, partial=True):
        return True
    clause = re.split(r"[.;!?]\s|[.;!?]$", after)
    return len(clause) == 1 and len(re.findall(r"[a-z'\-]+(?=[\s,.;!?)])", after)) < 2


def mark_titles(text: str, item: Item, others: Sequence[Item]) -> str:
    """`text` with the pick's title as "titlepick" and each evidence title as "titleother<n>" (longest first; a
    bracketed year after a title goes with it), so what is said of which title can be told apart."""
    named = [(item, PICK_MARK)] + [(o, f"{OTHER_MARK}{n}") for n, o in enumerate(others) if o.item_id != item.item_id]
    for it, mark in sorted(named, key=lambda pair: -len(pair[0].title)):
        if it.year:
            text = re.sub(re.escape(it.title) + r"\s*\(" + str(it.year) + r"\)", mark, text, flags=re.IGNORECASE)
        text = re.sub(r"(?<!\w)" + re.escape(it.title) + r"(?!\w)", mark, text, flags=re.IGNORECASE)
    return text


class RoleCheck:
    """The rules of this module for one catalog (`grounding` finds genre words; `words`: claims.toml)."""

    def __init__(self, grounding: GroundingChecker, words: ClaimWords, implied: re.Pattern):
        self.grounding = grounding
        self.words = words
        self.implied = implied

    def problems(self, masked: str, marked: str, item: Item, evidence: Evidence, others: Sequence[Item]) -> list[str]:
        """`masked`: the sentence with every title of the pick and its evidence replaced by "this film"; `marked`:
        with them written as `mark_titles` does; `others`: the catalog items of the evidence's titles."""
        return (self.numbers(masked, item, evidence) + self.titles(marked, item, others)
                + self.praise(masked, item, evidence))

    # ------------------------------------------------------------------ numbers in their roles
    def numbers(self, masked: str, item: Item, evidence: Evidence) -> list[str]:
        roles = number_roles(item, evidence)
        by_value: dict[str, list[Role]] = {}
        for role in roles:
            by_value.setdefault(role.value, []).append(role)
        low = masked.lower()
        problems: list[str] = []
        stated: Counter[str] = Counter()
        for m in NUMBER.finditer(masked):
            raw, value = m.group(0), number_value(m.group(1))
            held = by_value.get(value)
            if not held:
                continue  # not the evidence's: the grounding check rejects it
            if _GLUED_BEFORE.search(masked[:m.start()]) or _GLUED_AFTER.match(masked[m.end(1):]):
                around = masked[max(0, m.start() - 6):m.end() + 8].strip()
                problems.append(f"{raw} is glued into a word ({around!r}): a number of the evidence stands alone")
                continue
            before, after = low[max(0, m.start() - 40):m.start()], low[m.end():m.end() + 40]
            if not any(self._in_role(role.kind, before, after, bool(m.group(2))) for role in held):
                names = ", ".join(dict.fromkeys(_ROLE_NAMES[r.kind] for r in held))
                problems.append(f"{raw} is stated out of its role: in the evidence it is {names}")
            if not any(r.kind in ("year", "asked_year") for r in held):
                stated[value] += 1
        limits = statement_limits(roles)
        for value, count in stated.items():
            if count > limits[value]:
                problems.append(f"states {value} more often than the evidence holds it (one statistic said twice)")
        return problems

    def _in_role(self, kind: str, before: str, after: str, ordinal: bool) -> bool:
        if _TOP.search(before) and kind != "percent":
            return False  # "in the top 3.9 out of 5", "the top 171 viewers": only a share is a top
        if kind == "rank" and ordinal:
            return True
        if kind == "year":
            return bool(_BEFORE_RE["year"].search(before) or _YEAR_AFTER.match(after)
                        or self._genre_at(after))
        if kind == "asked_year":  # "from 1999, the years you asked for" still says the pick is from 1999
            return bool(_ASKED_YEAR_BEFORE.search(before)
                        or (_ASKED_YEAR_AFTER.match(after) and not _PICK_YEAR_BEFORE.search(before)))
        rx_after, rx_before = _AFTER_RE.get(kind), _BEFORE_RE.get(kind)
        return bool((rx_after is not None and rx_after.match(after))
                    or (rx_before is not None and rx_before.search(before)))

    def _genre_at(self, after: str) -> bool:
        """Whether `after` starts with a genre word, or one word and then a genre word: "1987 horror", "1950
        animated children's"."""
        head = after.lstrip()
        one_on = re.match(r"[a-z'\-]+\s+", head)
        return any(rx.match(text) for rx in (self.grounding._genre_re, self.implied)
                   for text in (head, head[one_on.end():] if one_on else ""))

    # ------------------------------------------------------------------ titles
    def titles(self, marked: str, item: Item, others: Sequence[Item]) -> list[str]:
        """"It is <another title>" says the pick is another film; capitalised words glued to a known title invent
        one ("The Dose of Amistad")."""
        problems = []
        for m in _IDENTITY.finditer(marked.lower()):
            problems.append(f"says {item.label} is {others[int(m.group(1))].label}")
        genre_names = set(self.grounding._genre_word)
        for m in _AROUND_LEFT.finditer(marked):
            words = re.findall(r"[A-Z][\w'\-]*", m.group(1))
            if _STARTS_SENTENCE.search(marked[:m.start()]):
                words = words[1:]
            words = [w for w in words if w.lower() not in genre_names]
            if words:
                problems.append(f"invents a title around {self._label(m.group(2), item, others)!r}: "
                                f"{m.group(1).strip()!r} is no part of it")
        for m in _AROUND_RIGHT.finditer(marked):
            word = m.group(2).split()[-1]
            if word.lower() not in genre_names:
                problems.append(f"invents a title around {self._label(m.group(1), item, others)!r}: "
                                f"{m.group(2)!r} is no part of it")
        return problems

    @staticmethod
    def _label(mark: str, item: Item, others: Sequence[Item]) -> str:
        return item.label if mark == PICK_MARK else others[int(mark[len(OTHER_MARK):])].label

    # ------------------------------------------------------------------ praise and "no other genre"
    def praise(self, masked: str, item: Item, evidence: Evidence) -> list[str]:
        problems = []
        praise = unearned_praise(masked, evidence)
        if praise:
            problems.append(f"praise {praise!r} needs a top-10% rating in the evidence")
        if _NO_OTHER.search(masked):
            named = set(self.grounding.mentions(masked).genres) | {
                canonical_genre(g) for m in self.implied.finditer(masked)
                for g in self.words.genre_words[m.group(1).lower()]}
            missing = {canonical_genre(g) for g in item.genres} - named
            if missing:
                problems.append(f"says it has no other genre, but {item.label} is also {', '.join(sorted(missing))}")
        return problems
