"""Title and ordinal mentions: "I loved Alien", "I've seen Aliens", "not The Godfather", "more like the
second one", "not that one". Titles are resolved with the catalog's fuzzy `TitleMatcher`; a mention
only counts when the match is confident, so a misspelt title still resolves but chit-chat does not."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.understanding.lexicon import Lexicon
from agent.understanding.model import OrdinalRef, TitleRef

# Clause punctuation (English and Chinese) ends a mention.
CLAUSE_END = re.compile(r"[.;!?,，。；！？、\n]|\s(?:but|because|since|so|which|although|though)\s|但是|因为|所以")
CONJUNCTION = re.compile(r"\s+(?:and|or|&|plus)\s+|\s*[和与及、/]\s*")
WORD = re.compile(r"[a-z0-9']+|[\u4e00-\u9fff]")
# "I'd like ..." / "would like ..." is a request, not a liked title.
REQUEST_BEFORE_LIKE = re.compile(r"(?:would|'d|d|you|we|they|to)\s+$")

MAX_TITLE_WORDS = 9
EXACT = 99.0  # score of a verbatim title
LIST_SCORE = 95.0  # a title continuing a comma-separated list must match (almost) verbatim
Matcher = Callable[[str], "tuple[str, str, float] | None"]  # mention -> (item_id, title, score 0..100)


@dataclass
class Mentions:
    titles: list[TitleRef] = field(default_factory=list)
    ordinals: list[OrdinalRef] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)  # consumed character spans


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


def find_mentions(text: str, lex: Lexicon, match: Matcher | None) -> Mentions:
    """Scan `text` (already cleaned) for trigger phrases and resolve what follows each one."""
    out = Mentions()
    low = text.lower()
    for trig in lex.trigger_re.finditer(low):
        relation = lex.title_triggers[re.sub(r"\s+", " ", trig.group(0))]
        if trig.group(0) == "like" and REQUEST_BEFORE_LIKE.search(low[: trig.start()]):
            continue
        if any(s <= trig.start() < e for s, e in out.spans):
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
        if found:
            out.titles.extend(found)
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
                out.titles.extend(m for m in more if m.item_id not in {t.item_id for t in out.titles})
                out.spans.append((start, start + lead + used))
        elif is_vocabulary_only(span, lex) or not re.search(r"[A-Za-z0-9]", span):
            continue  # genre talk, or CJK words (catalog titles are Latin script)
        elif relation != "dislike" and not trig.group(0).startswith(("like", "喜欢", "像", "类似")):
            # explicit "I've seen X" / "I loved X" with an unknown X deserves a note; a bare "like X" does not
            out.unknown.append(span[:80])
        elif span[:1].isupper() and len(span) > 2:
            out.unknown.append(span[:80])
    return out


def _segment(span: str, relation: str, match: Matcher, lex: Lexicon) -> tuple[list[TitleRef], int]:
    """Greedy left-to-right titles in `span`: at each point the longest run of words that matches a
    title ("pulp fiction from the 90s" -> Pulp Fiction; "Alien and Aliens" -> both). Returns the titles
    and how many characters of the span they used."""
    words = list(re.finditer(r"\S+", span))
    refs: list[TitleRef] = []
    i, used = 0, 0
    while i < len(words):
        for j in range(min(len(words), i + MAX_TITLE_WORDS), i, -1):
            text = span[words[i].start(): words[j - 1].end()].strip(" \"'“”‘’《》")
            hit = _confident(text, match, lex, relation)
            if hit:
                refs.append(TitleRef(item_id=hit[0], title=hit[1], mention=text, relation=relation, score=hit[2]))
                used, i = words[j - 1].end(), j
                break
        else:
            break
        # another title follows only after "and" / "or" / "、"; anything else ends the list
        if i < len(words) and CONJUNCTION.fullmatch(" " + words[i].group(0) + " "):
            i += 1
        elif i < len(words) and not span[words[i - 1].end() - 1] in ",、":
            break
    unique = {r.item_id: r for r in reversed(refs)}
    return [r for r in refs if unique[r.item_id] is r], used


def _confident(text: str, match: Matcher, lex: Lexicon, relation: str):
    """A match for `text` if it is a plausible title mention: vocabulary words ("sci-fi", "older")
    only count when they are exactly a title and written like one ("I've seen Aliens"; nobody has
    "seen" a genre, so there lower case is fine too)."""
    if len(text) < 2:
        return None
    vocabulary = is_vocabulary_only(text, lex)
    written_as_title = text[:1].isupper() or relation == "seen"
    if vocabulary and not written_as_title:
        return None
    hit = match(text)
    if hit is None or (vocabulary and hit[2] < EXACT):
        return None
    return hit
