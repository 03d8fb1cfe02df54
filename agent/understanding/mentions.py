"""Title and ordinal mentions: "I loved Alien", "I've seen Aliens, Alien 3 & Heat", "not The Godfather",
"the usual suspects was brilliant, more like it", "看过泰坦尼克号、教父和星球大战", "more like the second one".

English titles are resolved with the catalog's fuzzy `TitleMatcher` (case, articles, punctuation and typos
do not matter); a mention only counts when the match is confident, so a misspelt title still resolves but
chit-chat does not. Chinese names come from the alias table (agent/understanding/aliases.py), their role
from the words around them ([titles_zh] in lexicon.toml).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.understanding.aliases import AliasIndex
from agent.understanding.lexicon import Lexicon
from agent.understanding.model import OrdinalRef, TitleRef

# Clause punctuation (English and Chinese) ends a mention.
CLAUSE_END = re.compile(r"[.;!?,，。；！？、\n]|\s(?:but|because|since|so|which|although|though)\s|但是|因为|所以")
# Chinese clauses: list separators (、和与及) stay inside, so "看过A、B和C" is one clause.
ZH_CLAUSE = re.compile(r"[.;!?,，。；！？\n]|但是|不过|可是")
CONJUNCTION = re.compile(r"\s+(?:and|or|&|plus)\s+|\s*[和与及、/&]\s*")
WORD = re.compile(r"[a-z0-9']+|[\u4e00-\u9fff]")
CJK = re.compile(r"[\u4e00-\u9fff]")
# "I'd like ..." / "would like ..." is a request, not a liked title.
REQUEST_BEFORE_LIKE = re.compile(r"(?:would|'d|d|you|we|they|to)\s+$")

MAX_TITLE_WORDS = 9
EXACT = 99.0  # score of a verbatim title
LIST_SCORE = 95.0  # a title continuing a comma-separated list must match (almost) verbatim
OPINION_SCORE = 92.0
# A shorter run of words replaces a longer matching one only when it matches clearly better: "blade runner"
# (100) over "blade runner and the" (86), but "terminator 2" (97) stays over "terminator" (100).
SHORTER_MARGIN = 5.0  # "x was great": a lower-case title before an opinion must match closely
Matcher = Callable[[str], "tuple[str, str, float] | None"]  # mention -> (item_id, title, score 0..100)


@dataclass
class Mentions:
    titles: list[TitleRef] = field(default_factory=list)
    ordinals: list[OrdinalRef] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)  # consumed character spans

    def covers(self, pos: int) -> bool:
        return any(s <= pos < e for s, e in self.spans)

    def add(self, refs: list[TitleRef]) -> None:
        known = {t.item_id for t in self.titles}
        self.titles.extend(r for r in refs if r.item_id not in known)


def _ordinal(span: str, lex: Lexicon) -> int | None | bool:
    """Position referenced by `span` ("the second one" -> 2, "that one" -> None), False if no reference."""
    text = span.strip()
    if re.fullmatch(r"(?:that|this)(?:\s+(?:one|movie|film))?|那个|那部|这个|这部", text):
        return None
    m = re.fullmatch(r"(?:the\s+)?(\w+)(?:\s+(?:one|movie|film|pick))?|(第\w)(?:个|部)?", text)
    if m:
        word = m.group(1) or m.group(2)
        if word in lex.ordinals:
            return lex.ordinals[word]
    m = re.fullmatch(r"(?:number|no\.?|#)\s*(\d{1,2})", text)
    if m:
        return int(m.group(1))
    return False


def _trim(span: str, lex: Lexicon) -> str:
    """Drop trailing filler ("Aliens already" -> "Aliens") and surrounding quotes/space."""
    span = span.strip().strip("\"'“”‘’《》「」")
    while True:
        m = None
        for tm in lex.trailing_re.finditer(span.lower()):
            if tm.end() == len(span):
                m = tm
        if not m or m.start() == 0:
            return span.strip().strip("\"'“”‘’《》「」")
        span = span[: m.start()].rstrip()


def is_vocabulary_only(span: str, lex: Lexicon) -> bool:
    """True when every word of the span is parser vocabulary ("sci-fi films", "something older")."""
    low = lex.genre_re.sub(" ", span.lower())
    low = lex.not_titles_re.sub(" ", low)
    low = lex.mood_re.sub(" ", low)
    low = lex.era_re.sub(" ", low)
    return all(lex.is_vocabulary(w) for w in WORD.findall(low))


def find_mentions(text: str, lex: Lexicon, match: Matcher | None, aliases: AliasIndex | None = None) -> Mentions:
    """All title and ordinal mentions of `text` (already cleaned), each with its role."""
    out = Mentions()
    _after_triggers(text, lex, match, out)
    if match is not None:
        _before_opinions(text, lex, match, out)
    if aliases is not None and CJK.search(text):
        _chinese_names(text, lex, aliases, out)
    _anchor_cues(text, lex, out)
    return out


def _after_triggers(text: str, lex: Lexicon, match: Matcher | None, out: Mentions) -> None:
    """Mentions introduced by a phrase: "I loved X", "more like X", "I've seen X, Y and Z"."""
    low = text.lower()
    for trig in lex.trigger_re.finditer(low):
        relation = lex.title_triggers[re.sub(r"\s+", " ", trig.group(0))]
        if trig.group(0) == "like" and REQUEST_BEFORE_LIKE.search(low[: trig.start()]):
            continue
        never_seen = relation == "seen" and _not_seen(low[: trig.start()], lex)  # "I haven't seen X"
        if out.covers(trig.start()):
            continue
        start = trig.end()
        end_m = CLAUSE_END.search(text, start)
        end = end_m.start() if end_m else len(text)
        raw = text[start:end]
        span = _trim(raw, lex)
        if not span:
            continue
        position = _ordinal(span.lower(), lex)
        if position is not False:
            out.ordinals.append(OrdinalRef(position=position, relation=relation))
            out.spans.append((trig.start(), start + len(raw)))
            continue
        if match is None:
            continue
        found, used = _segment(span, relation, match, lex)
        span_len = len(span)
        if found and never_seen:
            out.spans.append((trig.start(), start + (len(raw) - len(raw.lstrip())) + used))
        elif found:
            out.add(found)
            out.spans.append((trig.start(), start + (len(raw) - len(raw.lstrip())) + used))
            # a list goes on after a comma: "I've seen The Godfather, Casablanca and Fargo"
            while end < len(text) and text[end] in ",、，" and used == span_len:
                start = end + 1
                end_m = CLAUSE_END.search(text, start)
                end = end_m.start() if end_m else len(text)
                raw = text[start:end]
                lead = re.match(r"\s*(?:(?:and|or|&|plus)\s+)?", raw).end()
                piece = _trim(raw[lead:], lex)
                more, used = _segment(piece, relation, match, lex)
                span_len = len(piece)
                # after a comma only near-verbatim titles continue the list ("…, what else?" does not)
                if not more or any(m.score < LIST_SCORE for m in more):
                    break
                out.add(more)
                out.spans.append((start, start + lead + used))
        elif is_vocabulary_only(span, lex) or not re.search(r"[A-Za-z0-9]", span):
            continue  # genre talk, or CJK words (handled by the alias table)
        elif relation not in ("dislike", "anchor") and not trig.group(0).startswith(("like", "喜欢", "像", "类似")):
            # explicit "I've seen X" / "I loved X" with an unknown X deserves a note; a bare "like X" does not
            out.unknown.append(span[:80])
        elif span[:1].isupper() and len(span) > 2:
            out.unknown.append(span[:80])


def _before_opinions(text: str, lex: Lexicon, match: Matcher, out: Mentions) -> None:
    """Mentions followed by an opinion: "the usual suspects was brilliant", "Titanic was awful"."""
    for m in lex.opinion_re.finditer(text.lower()):
        relation = lex.opinion_after[re.sub(r"\s+", " ", m.group("op"))]
        clause_start = max([c.end() for c in CLAUSE_END.finditer(text, 0, m.start())] or [0])
        words = list(re.finditer(r"\S+", text[clause_start: m.start()]))
        for i in range(len(words)):  # the longest run of words before the opinion that is all titles
            first = clause_start + words[i].start()
            if out.covers(first):
                continue
            span = text[first: m.start()].strip()
            found, used = _segment(span, relation, match, lex, min_score=OPINION_SCORE)
            if found and used == len(span):
                out.add(found)
                out.spans.append((first, m.end()))
                break


def _not_seen(before: str, lex: Lexicon) -> bool:
    """"I haven't seen" / "never watched": a not-seen word right before the trigger."""
    tail = before[-14:]
    return any(m.end() >= len(tail) - 1 for m in lex.not_seen_re.finditer(tail))


def _chinese_names(text: str, lex: Lexicon, aliases: AliasIndex, out: Mentions) -> None:
    """Chinese film names from the alias table, each with the role its clause gives it."""
    hits = [h for h in aliases.find(text) if not out.covers(h.start)]
    if not hits:
        return
    cuts = [0, *(m.end() for m in ZH_CLAUSE.finditer(text)), len(text) + 1]
    for hit in hits:
        lo = max(c for c in cuts if c <= hit.start)
        hi = min(c for c in cuts if c > hit.start)
        before = _blank_hits(text[lo: hit.start], hits, lo)
        # after the name, the rest of its list does not count: "A和B都看过了" is seen for A too
        after = re.sub(r"[\s和与及、]", "", _blank_hits(text[hit.end: min(hi, len(text))], hits, hit.end))
        relation = _zh_role(before, after, lex)
        out.spans.append((hit.start, hit.end))
        if relation is None:
            continue  # "没看过X": said, but neither liked nor seen
        out.add([TitleRef(item_id=hit.item_id, title=hit.label, mention=hit.name, relation=relation, score=100.0)])


def _blank_hits(segment: str, hits, offset: int) -> str:
    """The clause text before a name with the other names in it blanked ("看过A、" keeps only "看过")."""
    chars = list(segment)
    for h in hits:
        for i in range(max(h.start - offset, 0), min(h.end - offset, len(chars))):
            chars[i] = " "
    return "".join(chars)


def _zh_role(before: str, after: str, lex: Lexicon) -> str | None:
    def last(kind: str, text: str) -> tuple[int, int]:
        """(end, length) of the kind's last cue: the nearest cue wins, then the longest ("没看过" > "看过")."""
        found = list(lex.zh_cue_re(kind).finditer(text))
        return (found[-1].end(), found[-1].end() - found[-1].start()) if found else (-1, 0)

    def first(kind: str, text: str):
        m = lex.zh_cue_re(kind).search(text[:8])
        return m.start() if m else None

    cues = {kind: last(kind, before) for kind in ("seen_before", "not_seen_before", "like_before",
                                                  "dislike_before", "anchor_before", "pair_before")}
    if first("anchor_after", after) is None:
        cues.pop("pair_before")  # 和 without 一样 / 差不多 after the name just joins a list
    nearest = max(cues, key=lambda k: cues[k])
    if cues[nearest][0] >= 0:
        return {"seen_before": "seen", "not_seen_before": None, "like_before": "like", "dislike_before": "dislike",
                "anchor_before": "anchor", "pair_before": "anchor"}[nearest]
    for kind, relation in (("dislike_after", "dislike"), ("seen_after", "seen"), ("like_after", "like")):
        if first(kind, after) is not None:
            return relation
    return "anchor"


def _anchor_cues(text: str, lex: Lexicon, out: Mentions) -> None:
    """"X was brilliant, more like it" / "我喜欢X，推荐类似的": the liked titles of the message become its
    anchors (or, with none liked, the seen ones), and "more like that" refers to them, not to a pick."""
    if not out.titles or not lex.anchor_cue_re.search(text.lower()):
        return
    out.ordinals = [o for o in out.ordinals if o.position is not None]
    if any(t.relation == "anchor" for t in out.titles):
        return
    source = "like" if any(t.relation == "like" for t in out.titles) else "seen"
    for t in out.titles:
        if t.relation == source:
            t.relation = "anchor"


def _segment(span: str, relation: str, match: Matcher, lex: Lexicon,
             min_score: float = 0.0) -> tuple[list[TitleRef], int]:
    """Left-to-right titles in `span`: at each point the longest run of words that matches a title
    (unless a shorter run matches clearly better) ("pulp fiction from the 90s" -> Pulp Fiction; "Alien and Aliens", "Alien & Heat",
    "Alien/Heat" -> both). Returns the titles and how many characters of the span they used."""
    words = list(re.finditer(r"[^\s/&]+|[/&]", span))
    refs: list[TitleRef] = []
    i, used = 0, 0
    while i < len(words):
        best = None  # (score, words used, hit, text): the longest run, unless a shorter one is clearly better
        for j in range(min(len(words), i + MAX_TITLE_WORDS), i, -1):
            if _connector(words[j - 1].group(0), end=True) or _connector(words[i].group(0)):
                continue  # a title run neither starts nor ends with a list word ("pulp fiction and the")
            text = span[words[i].start(): words[j - 1].end()].strip(" \"'“”‘’《》")
            hit = _confident(text, match, lex, relation, min_score)
            if hit and (best is None or hit[2] >= best[0] + SHORTER_MARGIN):
                best = (hit[2], j, hit, text)
                if hit[2] >= EXACT:
                    break
        if best is None:
            break
        _, j, hit, text = best
        refs.append(TitleRef(item_id=hit[0], title=hit[1], mention=text, relation=relation, score=hit[2]))
        used, i = words[j - 1].end(), j
        # another title follows only after "and" / "or" / "&" / "/" / "、"; anything else ends the list
        if i < len(words) and CONJUNCTION.fullmatch(" " + words[i].group(0) + " "):
            i += 1
        elif i < len(words) and not span[words[i - 1].end() - 1] in ",、":
            break
    unique = {r.item_id: r for r in reversed(refs)}
    return [r for r in refs if unique[r.item_id] is r], used


def _connector(word: str, end: bool = False) -> bool:
    """A list word; at the end of a run articles count too ("blade runner and the")."""
    return word.lower() in ("/", "&", "and", "or", "plus") or (end and word.lower() in ("the", "a", "an"))


def _confident(text: str, match: Matcher, lex: Lexicon, relation: str, min_score: float = 0.0):
    """A match for `text` if it is a plausible title mention: vocabulary words ("sci-fi", "older")
    only count when they are exactly a title and written like one ("I've seen Aliens"; nobody has
    "seen" a genre, so there lower case is fine too). `min_score` applies to lower-case mentions."""
    if len(text) < 2 or text in "/&":
        return None
    vocabulary = is_vocabulary_only(text, lex)
    written_as_title = text[:1].isupper() or text[:1].isdigit()
    if vocabulary and not (written_as_title or relation == "seen"):
        return None
    hit = match(text)
    if hit is None or (vocabulary and hit[2] < EXACT) or (not written_as_title and hit[2] < min_score):
        return None
    return hit
