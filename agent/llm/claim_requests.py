"""What a request reference of a sentence about a pick may attach to (the strict claim check, agent/llm/claims.py).

A reference ("you asked for", "as you requested", "you mentioned", agent/llm/claims.toml [request]) attaches to the
nearest claim of its clause (before it, else after it; clauses end at commas, semicolons, "and", "which"), else to
the clause before it (and, unless it opens its clause, the one after). That claim must be something the request
holds (Evidence.satisfies, retrieval/evidence.py): an asked genre, the years, the mood, the family audience, an
avoided genre (in a negation), a title the viewer named. A number, a catalog statistic ("the top 6% of the catalog
you asked") or the pick itself ("the film you asked for", "you want to watch <the pick>") is not; a general
reference ("one of the films you asked for") needs the pick to meet something of the request. And every genre named
in a clause with a reference must have been asked for.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from agent.llm.claim_roles import OTHER_MARK, PICK_MARK
from agent.llm.claim_words import NUMBER, ClaimWords, number_value
from agent.llm.grounding import GroundingChecker, canonical_genre
from retrieval.catalog.schema import Item
from retrieval.evidence import Evidence

_TASTE = ("you like", "your taste")  # they refer to the viewer's taste, not the request (left to the genre rule)
_SUBCLAUSE = re.compile(r",(?!\d)|[;:()]|\b(?:and|which|but|while|though|although|whereas)\b")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_NEGATION = re.compile(r"\b(no|not|none|without|avoid\w*|skip\w*|exclud\w*|rule\w* out)\b")
# "it is in the genre you asked for": the genre noun as what was asked, when the request named none the pick has
_GENRE_NOUN = re.compile(r"\bgenres?\s+(?:that\s+|which\s+)?you(?:'ve|'re| have| are| were)?\s+(?:asked|"
                         r"requested|wanted|want|named|mentioned|chose|looking|seek|said)\b")
_YEAR_WORDS = re.compile(r"\b(years?|decades?|eras?|period|time range|window|dates?|(?:1[89]|20)\d0s|'?\d0s)\b",
                         re.IGNORECASE)
# "the film you asked for", "a film you asked to watch": the reference is about the pick itself
_SELF = re.compile(r"\b(?:the|a|an|this|that)\s+(?:same\s+|very\s+|exact\s+)?(?:film|movie|title|one|pick|picture)\s+"
                   r"(?:that\s+|which\s+)?$")
_SELF_AFTER = re.compile(r"\s*(?:for\s+|to\s+(?:watch|see)\s+|to\s+)?(?:" + PICK_MARK +
                         r"|this film|this movie|this one)\b")
# the words of a clause that a reference opens ("…, as you asked", "…, which is what you asked for")
_INITIAL = {"as", "just", "exactly", "precisely", "like", "which", "that", "what", "is", "was", "it", "this", "all",
            "also", "so", "be", "being", "and"}
_WISH_KINDS = ("title", "genre", "years", "mood", "audience")  # claims a request can hold
_ALL_KINDS = (*_WISH_KINDS, "number", "statistic")
_CLAIM_KINDS = (  # (kind, pattern) in order of precedence where matches overlap
    ("title", re.compile(r"\b(?:" + PICK_MARK + "|" + OTHER_MARK + r"\d+)\b")),
    ("number", NUMBER),
    ("genre", None),  # the checker's genre words (GroundingChecker) and implied genre words (claims.toml)
    ("years", re.compile(r"\b(?:1[89]|20)\d0'?s\b|'?\b[2-9]0'?s\b|\b(?:twenties|thirties|forties|fifties|sixties|"
                         r"seventies|eighties|nineties)\b|\b(?:years?|decades?|eras?|period|time range|window|"
                         r"dates?)\b")),
    ("mood", None),  # mood words and the request's own mood words
    ("audience", re.compile(r"\b(?:family|families|kids|children|child|audience|all ages|ages|household|home)\b")),
    ("statistic", re.compile(r"\b(?:catalog(?:ue)?|viewers?|fans?|ratings?|rated|votes?|average|averages|score|"
                             r"scores|popularity|popular|top|percent|rank(?:ed|s|ing)?)\b|%")),
)


class RequestCheck:
    """The rules of this module for one catalog (`grounding` finds genre words; `words`: claims.toml; `implied`:
    the claim checker's pattern of implied genre words)."""

    def __init__(self, grounding: GroundingChecker, words: ClaimWords, implied: re.Pattern):
        self.grounding = grounding
        self.words = words
        self.implied = implied
        refs = sorted((r for r in words.request_references if r not in _TASTE), key=len, reverse=True)
        self._reference = re.compile(r"(?<![\w'])(?:" + "|".join(map(re.escape, refs)) + r")(?![\w'])")
        self._references_all = list(words.request_references)

    def mentions_reference(self, low: str) -> bool:
        """Whether lower-case `low` holds a request reference (a cheap test before the rules)."""
        return any(ref in low for ref in self._references_all)

    def problems(self, masked: str, marked: str, item: Item, evidence: Evidence, asked: Sequence[str],
                 others: Sequence[Item]) -> list[str]:
        """`masked`: the sentence with every title of the pick and its evidence replaced by "this film"; `marked`:
        with them written as `claim_roles.mark_titles` does; `others`: the catalog items of the evidence's titles."""
        return (self.request_genres(masked, evidence, asked)
                + self.request_references(marked, item, evidence, asked, others))

    def request_genres(self, masked: str, evidence: Evidence, asked: Sequence[str]) -> list[str]:
        """In a clause that refers to the request, every genre named was asked for (or, in a negation, avoided) and
        years are named only when the request set some, the genre noun ("the genre you asked for") only when it named
        one the pick has."""
        s = evidence.satisfies
        wanted = {canonical_genre(g) for g in [*asked, *s.genres, *s.mood_genres, *s.audience_genres]}
        avoided = {canonical_genre(g) for g in s.avoided_genres}
        problems = []
        for clause in re.split(r"[.;:!?,]", masked):
            low = clause.lower()
            if not any(re.search(r"(?<![\w])" + re.escape(r) + r"(?![\w])", low) for r in self._references_all):
                continue
            named = set(self.grounding.mentions(clause).genres) | self._implied_genres(clause)
            negated = _NEGATION.search(low)
            extra = named - wanted - (avoided if negated else set())
            if extra:
                problems.append(f"says you asked for {', '.join(sorted(extra))}, which the request did not name")
            if not s.years and _YEAR_WORDS.search(clause):
                problems.append("says you asked for years or an era, which the request did not set")
            genre_noun = _GENRE_NOUN.search(low)
            if not s.genres and genre_noun:
                problems.append(f"refers to a genre you asked for ({genre_noun.group(0)!r}): the request named none "
                                "it has")
        return problems

    def _implied_genres(self, text: str) -> set[str]:
        return {canonical_genre(g) for m in self.implied.finditer(text)
                for g in self.words.genre_words[m.group(1).lower()]}

    def request_references(self, marked: str, item: Item, evidence: Evidence, asked: Sequence[str],
                           others: Sequence[Item]) -> list[str]:
        """Each request reference attaches to the nearest claim of its clause (before it, else after it), else to
        the clause before it (and, unless it opens its clause, the one after): that claim must be one the request
        holds."""
        problems: list[str] = []
        low = marked.lower()
        for sentence in _sentences(low):
            clauses = _subclauses(sentence)
            for n, clause in enumerate(clauses):
                for ref in self._reference.finditer(clause):
                    before, after = clause[:ref.start()], clause[ref.end():]
                    negated = bool(_NEGATION.search(clause))
                    if _SELF.search(before) or _SELF_AFTER.match(after):
                        problems += _self_claim(item, evidence)
                        continue
                    # the pick named before the reference is its subject ("Toy Story is one of the films you asked
                    # for"), not what was asked for
                    ahead = [c for c in self._claims(before, evidence) if c != ("title", PICK_MARK)]
                    near = ahead[-1:] or self._claims(after, evidence)[:1]
                    said_before = " ".join([*clauses[:n], before])
                    if near:
                        problems += self._judge(near[0], item, evidence, asked, others, negated)
                        problems += _years_of_other(near[0], said_before, evidence, others)
                        continue
                    # no claim in its own clause: a reference that opens its clause ("…, as you asked") is about
                    # the clause before; any other ("it fits the genres you asked for", "of the genres you asked
                    # for, …") about the wish named nearest before it, else after it (a statistic there is a
                    # statement of its own)
                    opens = set(re.findall(r"[a-z']+", before)) <= _INITIAL
                    kinds = _ALL_KINDS if opens else _WISH_KINDS
                    attached = None
                    if n > 0:
                        prev = [c for c in self._claims(clauses[n - 1], evidence) if c[0] in kinds][-1:]
                        attached = (prev[0], clauses[n - 1]) if prev else None
                    if attached is None and n + 1 < len(clauses) and not opens:
                        nxt = [c for c in self._claims(clauses[n + 1], evidence) if c[0] in kinds][:1]
                        attached = (nxt[0], clauses[n + 1]) if nxt else None
                    if attached is not None:
                        problems += self._judge(attached[0], item, evidence, asked, others,
                                                negated or bool(_NEGATION.search(attached[1])))
                        problems += _years_of_other(attached[0], said_before, evidence, others)
                    elif not _request_held(evidence):
                        problems.append("refers to your request, but the evidence shows nothing of it that the pick "
                                        "meets")
        return list(dict.fromkeys(problems))

    def _claims(self, text: str, evidence: Evidence) -> list[tuple[str, str]]:
        """(kind, the words) of each claim `text` makes, in order: a title, a number, a genre, years, a mood, the
        audience, a catalog statistic."""
        moods = [m.lower() for m in evidence.satisfies.moods]
        mood_rx = re.compile(r"\b(?:moods?|tone|feeling|vibe|atmosphere" +
                             "".join("|" + re.escape(m) for m in moods) + r")\b")
        taken: list[tuple[int, int, str, str]] = []
        for kind, rx in _CLAIM_KINDS:
            patterns = {"genre": [self.grounding._genre_re, self.implied], "mood": [mood_rx]}.get(kind, [rx])
            for pattern in patterns:
                for m in pattern.finditer(text):
                    if any(m.start() < e and s < m.end() for s, e, _, _ in taken):
                        continue
                    taken.append((m.start(), m.end(), kind, m.group(0)))
        return [(kind, words) for _, _, kind, words in sorted(taken)]

    def _judge(self, claim: tuple[str, str], item: Item, evidence: Evidence, asked: Sequence[str],
               others: Sequence[Item], negated: bool) -> list[str]:
        kind, words = claim
        s = evidence.satisfies
        if kind == "title":
            if words == PICK_MARK:
                return _self_claim(item, evidence)
            other = others[int(words[len(OTHER_MARK):])]
            relations = {c.relation for c in evidence.connections if c.item_id == other.item_id}
            if relations & {"anchor", "liked"} or any(sg.item_id == other.item_id for sg in evidence.shared_genres):
                return []
            return [f"ties {other.label} to your request, but it comes from your history"]
        if kind == "genre":
            said = {canonical_genre(words)} if words.lower() not in self.words.genre_words else \
                {canonical_genre(g) for g in self.words.genre_words[words.lower()]}
            # a mood's genres are the system's reading of the mood: "the romance you asked for" when a light mood was
            # asked claims a genre wish the viewer never made ("it fits the light mood you asked for" is the mood's)
            wanted = {canonical_genre(g) for g in [*asked, *s.genres, *s.audience_genres]}
            if negated:
                wanted |= {canonical_genre(g) for g in s.avoided_genres}
            extra = said - wanted
            return [f"says you asked for {', '.join(sorted(extra))}, which the request did not name"] if extra else []
        if kind == "number":
            value = float(number_value(NUMBER.match(words).group(1)))
            low, high = s.year_min or 1800, s.year_max or 2100
            if s.years and value.is_integer() and low <= value <= high:
                return []
            return [f"ties the number {words} to your request, which asked for no number"]
        if kind == "years":
            return [] if s.years else ["says you asked for years or an era, which the request did not set"]
        if kind == "mood":
            return [] if s.moods or s.mood_genres else ["says you asked for a mood, which the request did not name"]
        if kind == "audience":
            return [] if s.audience_genres else ["says you asked for an audience, which the request did not name"]
        return [f"ties a catalog statistic ({words!r}) to your request: nobody asked for it"]


def _self_claim(item: Item, evidence: Evidence) -> list[str]:
    """The pick itself is never what the viewer asked for unless they named it (an anchor connection to it)."""
    if any(c.item_id == item.item_id and c.relation == "anchor" for c in evidence.connections):
        return []
    return [f"says you asked for {item.label} itself, which you did not name"]


_SUBJECT = re.compile(r"\b(?:it|its|it's|this|" + PICK_MARK + "|" + OTHER_MARK + r"(\d+))\b")


def _years_of_other(claim: tuple[str, str], said_before: str, evidence: Evidence, others: Sequence[Item]) -> list[str]:
    """Asked years said right after another title, with no word for the pick between ("You rated Chinatown (1974)
    highly, within the years you asked for"), are that title's, and must hold for it."""
    if claim[0] != "years":
        return []
    subjects = list(_SUBJECT.finditer(said_before))
    if not subjects or subjects[-1].group(1) is None:
        return []
    other = others[int(subjects[-1].group(1))]
    s = evidence.satisfies
    if other.year and s.years and (s.year_min or 0) <= other.year <= (s.year_max or 9999):
        return []
    return [f"ties the years you asked for to {other.label}, which is not from them"]


def _request_held(evidence: Evidence) -> bool:
    """Whether the pick meets anything of the request (a general "what you asked for" needs something)."""
    s = evidence.satisfies
    return bool(s.genres or s.years or s.moods or s.mood_genres or s.audience_genres or s.avoided_genres
                or evidence.shared_genres or any(c.relation in ("anchor", "liked") for c in evidence.connections))


def _sentences(low: str) -> list[str]:
    return [s for s in _SENTENCE.split(low) if s.strip()]


def _subclauses(sentence: str) -> list[str]:
    """The non-empty pieces of `sentence` between commas, semicolons, colons, brackets and the words and / which /
    but / while / though."""
    return [piece for piece in _SUBCLAUSE.split(sentence) if piece.strip()]
