"""Deterministic message → `Preferences` parser (English and Chinese).

Order matters: titles and user ids are found first and blanked out, so "I've seen Star Wars" does not
read as the War genre, "音乐之声" not as Musical and "terminator 2" not as a count; then years (so "1995"
is not a count), counts, genres with negation / "forget" scope and audiences, moods, and finally the
free-text remainder.

Genres: two genre words side by side mean both ("romantic comedy", "科幻恐怖片": genre_mode "all"); a
list joined by "and" means each pick has one and many have both ("sci-fi and action": "blend"); "or"
or a comma means any. Questions that contain a negation word ("有没有喜剧", "why not a comedy?") do not
negate.
"""
from __future__ import annotations

import re
import unicodedata

from agent.understanding.aliases import AliasIndex
from agent.understanding.lexicon import Lexicon, load_lexicon, phrase_pattern
from agent.understanding.mentions import CJK, Matcher, find_mentions
from agent.understanding.model import Preferences

MAX_QUERY_CHARS = 200  # free text sent to semantic search
MAX_MESSAGE_CHARS = 2000  # longer messages are cut (the reply says so); nobody types a novel
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")
# Words containing 别 that do not negate ("特别喜欢" = especially like).
NOT_NEGATION = re.compile(r"特别|别的|别人|分别|区别|类别|级别|告别|性别")
# Chinese questions built on a negation: the A-not-A form (有没有, 要不要, 喜不喜欢) and "没有…吗".
AB_QUESTION = re.compile(r"([\u4e00-\u9fff])[不没]\1")
NEGATIVE_QUESTION = re.compile(r"没有(?=[^，。！？,.!?；;]*[吗么嘛][？?]?\s*(?:[，。！？,.!?；;]|$))")
# Between two genre words: nothing (or a hyphen, or 的) = both at once; "or" = either; "and" = a blend.
ADJACENT = re.compile(r"[\s\-–—]*|\s*的\s*")
OR_WORD = re.compile(r"\bor\b|或者|或|还是|/")
AND_WORD = re.compile(r"\band\b|&|\bplus\b|和|与|及|跟|、")
MASK = "\u3000"  # an ideographic space keeps offsets while hiding a phrase from the genre scan
SENTENCE = re.compile(r"(?<=[.!?。！？\n])\s*")
CLAUSE = re.compile(r"[.;!?,，。；！？\n]")
USER_ID = re.compile(r"(?:\b(?:i\s*am|i'm|im|as|for|me\s*=)\s*)?\buser(?:\s*id)?\s*(?:#|no\.?|number|=|:)?\s*(\d{1,7})\b"
                     r"|(?:我是)?用户\s*(?:id|ID)?\s*[#:：]?\s*(\d{1,7})")
YEAR = r"(1[89]\d\d|20[0-3]\d)"
FILLER = frozenset("""i me my we you a an the some any and or of for with to in on at is are be it that this
please can could would should will want wanted need looking look find give show recommend recommendation
recommendations suggest suggestions something anything stuff kind sort type types movie movies film films
picks pick titles title ones one get watch watching see seeing tonight today really very good great best nice
about like love liked also too more less other just only so much lots lot maybe perhaps what how which
d s ve m re ll t i'd i'm i've id im ive from top say tell seen watched loved liked enjoyed hated already favorite favourite else but
however instead though show list hi hello hey thanks thank ok okay yes yeah sure let lets let's me actually was is
were are similar surprise rather switch change longer whole ones haven't havent hmm hm um umm uh erm
lol ha haha wow yay meh
next mood favourites favorites fave faves suggestion""".split())  # chit-chat: "what should I watch next?", "in the mood for"


def clean_message(message: object) -> tuple[str, bool]:
    """Printable, NFKC-normalised, length-capped text; returns (text, was_truncated)."""
    text = message if isinstance(message, str) else ("" if message is None else str(message))
    text = unicodedata.normalize("NFKC", text)
    text = CONTROL.sub(" ", text).replace("\t", " ")
    text = re.sub(r"[ ]{2,}", " ", text).strip()
    truncated = len(text) > MAX_MESSAGE_CHARS
    return text[:MAX_MESSAGE_CHARS], truncated


def _words(title: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", title.lower())


def _decade_range(start: int, part: str, kind: str | None) -> tuple[int | None, int | None]:
    """A decade, part of one ("early 80s", "90年代末"), or everything before / after it."""
    if kind in ("before", "以前", "之前"):
        return None, start - 1
    if kind in ("after", "以后", "之后"):
        return start + 10, None
    if part in ("early", "初"):
        return start, start + 4
    if part in ("late", "末"):
        return start + 5, start + 9
    if part in ("mid", "mid-", "middle", "中"):
        return start + 3, start + 7
    return start, start + 9


def _union(*lists: list[str]) -> list[str]:
    out: list[str] = []
    for items in lists:
        out += [x for x in items if x not in out]
    return out


def _add(target: list[str], genres) -> None:
    target.extend(g for g in genres if g not in target)


def _blank(text: str, spans) -> str:
    chars = list(text)
    for s, e in spans:
        chars[s:e] = " " * (e - s)
    return "".join(chars)


class PreferenceParser:
    """`parse(message) -> Preferences`; `catalog_years` anchors "recent" / "classic" to the catalog."""

    def __init__(self, match: Matcher | None = None, catalog_years: tuple[int, int] = (1920, 1998),
                 lexicon: Lexicon | None = None, max_count: int = 20, titles: list[str] = (),
                 aliases: AliasIndex | None = None):
        self.match = match
        self.aliases = aliases  # Chinese names of catalog titles
        self.year_lo, self.year_hi = catalog_years
        self.lex = lexicon or load_lexicon()
        self.max_count = max_count
        # Multi-word titles that contain vocabulary ("Star Wars", "The Sound of Music") are read as
        # titles wherever they appear, never as genres.
        self._titles_re = phrase_pattern([t for t in (" ".join(_words(t)) for t in titles)
                                          if len(t.split()) > 1 and _words(t) and self._has_vocabulary(t)])
        n = self.lex.number_words
        self._count_after = re.compile(
            rf"(?<![\w-])(\d{{1,2}}|{n})\s+(?:(?:more|other|different|good|great|new|\S+)\s+){{0,2}}?"
            r"(?:movies|films|picks|recommendations|suggestions|titles|ones|options|flicks|shows|of them|"
            + "|".join(re.escape(g) for g in sorted(self.lex.genre_of, key=len, reverse=True) if g.isascii())
            + r")(?![a-z])")
        self._count_before = re.compile(rf"\b(?:top|give me|show me|recommend|suggest|list|only|just)\s+(\d{{1,2}}|{n})\b")
        self._count_more = re.compile(rf"(?<![\w-])(\d{{1,2}}|{n})\s+more\b")
        self._count_zh = re.compile(r"(\d{1,2}|[一二两三四五六七八九十几]{1,3})\s*(?:部|个|本|条|款)")

    # ------------------------------------------------------------------ public
    def without_instructions(self, text: str) -> str:
        """The message without the sentences that try to instruct the assistant (an injection attempt):
        they are instructions, not tastes, and nothing in them is read or repeated back."""
        lex = self.lex
        if not lex.intent_re("injection").search(text.lower()):
            return text
        keep = [s for s in SENTENCE.split(text)
                if not lex.intent_re("injection").search(s.lower()) and not lex.intent_re("instruction").search(s.lower())]
        return " ".join(keep).strip()

    def parse(self, message: object) -> Preferences:
        text, _ = clean_message(message)
        prefs = Preferences()
        if not text:
            return prefs
        low = text.lower()
        lex = self.lex
        prefs.language = "zh" if CJK.search(text) else "en"
        if lex.intent_re("injection").search(low):
            prefs.injection = True
            text = self.without_instructions(text)
            low = text.lower()
        prefs.reset = bool(lex.intent_re("reset").search(low))
        prefs.additive = bool(lex.intent_re("additive").search(low))
        prefs.anything = bool(lex.intent_re("anything").search(low))

        consumed: list[tuple[int, int]] = []
        for m in USER_ID.finditer(low):
            prefs.user_id = m.group(1) or m.group(2)
            consumed.append(m.span())
        work = _blank(text, consumed)

        named = [m for m in self._titles_re.finditer(work.lower())]
        mentions = find_mentions(work, lex, self.match, self.aliases)
        unnamed = [m for m in named if not any(s <= m.start() < e for s, e in mentions.spans)]
        mentions.spans.extend(m.span() for m in unnamed)
        prefs.titles, prefs.ordinals, prefs.unknown_titles = mentions.titles, mentions.ordinals, mentions.unknown
        work = _blank(work, mentions.spans).lower()

        work = self._years(work, prefs)
        work = self._count(work, prefs)
        work = self._genres(work, prefs)
        work = self._moods(work, prefs)
        prefs.query = " ".join([m.group(0) for m in unnamed] + [self._remainder(work)]).strip()
        # pieces of a title the matcher resolved ("confidential" of "L.A. Confidential") were understood too
        understood = {w for ref in prefs.titles for w in _words(ref.title)}
        prefs.query = " ".join(w for w in prefs.query.split() if w not in understood)
        return prefs

    def _has_vocabulary(self, title: str) -> bool:
        low = title.lower()
        return bool(self.lex.genre_re.search(low) or self.lex.era_re.search(low) or self.lex.negation_re.search(low))

    # ------------------------------------------------------------------ years
    def _years(self, low: str, p: Preferences) -> str:
        lex = self.lex
        spans: list[tuple[int, int]] = []

        def take(pattern: str, fn) -> None:
            nonlocal low
            for m in re.finditer(pattern, low):
                fn(m)
                spans.append(m.span())
            low = _blank(low, spans)

        def setr(lo, hi):
            p.year_min, p.year_max = lo, hi

        def on_decade(m, kind=None) -> None:
            start = self._decade_start(m.group("d"))
            if start is not None:
                setr(*_decade_range(start, (m.groupdict().get("part") or "").strip(), kind or m.groupdict().get("k")))

        take(rf"(?:between|from)\s+{YEAR}\s+(?:and|to|-|until)\s+{YEAR}|{YEAR}\s*(?:-|–|to|到|至)\s*{YEAR}",
             lambda m: setr(*sorted(int(g) for g in m.groups() if g)))
        take(rf"(?:before|pre-?|prior to|earlier than|older than)\s*{YEAR}", lambda m: setr(None, int(m.group(1)) - 1))
        take(rf"(?:until|up to|through|no later than)\s+{YEAR}", lambda m: setr(None, int(m.group(1))))
        take(rf"(?:after|post-?|later than|newer than)\s*{YEAR}", lambda m: setr(int(m.group(1)) + 1, None))
        take(rf"(?:since|starting(?:\s+(?:from|in))?)\s+{YEAR}(?!s)|from\s+{YEAR}\s+(?:on(?:wards?)?|and later|or later)",
             lambda m: setr(int(m.group(1) or m.group(2)), None))
        take(rf"{YEAR}\s*年?\s*(?:以前|之前|前)", lambda m: setr(None, int(m.group(1)) - 1))
        take(rf"{YEAR}\s*年?\s*(?:以后|之后|后)", lambda m: setr(int(m.group(1)) + 1, None))
        take(rf"{YEAR}\s*年?\s*(?:以来|起)", lambda m: setr(int(m.group(1)), None))
        take(r"(?P<d>(?:19)?\d0|[二三四五六七八九]十)\s*年代(?P<part>初|末|中)?(?:\s*(?P<k>以前|之前|以后|之后))?",
             on_decade)
        dec = r"(?:19|20)?\d0'?s|'\d0s|" + "|".join(w for w in lex.decades if w.isascii())
        take(rf"(?:before|pre-?|prior to|older than)\s*(?:the\s+)?(?P<d>{dec})(?![a-z0-9])",
             lambda m: on_decade(m, "before"))
        take(rf"(?:after|post-?|newer than|later than)\s*(?:the\s+)?(?P<d>{dec})(?![a-z0-9])",
             lambda m: on_decade(m, "after"))
        take(rf"(?<![a-z0-9])(?:(?P<part>early|late|mid-?|middle)\s*)?(?:the\s+)?(?P<d>{dec})(?![a-z0-9])",
             on_decade)
        take(rf"(?:in|from|of|year)\s+{YEAR}(?!s)|(?<![\d])({YEAR[1:-1]})(?:年)?(?![\ds])",
             lambda m: setr(int(m.group(1) or m.group(2)), int(m.group(1) or m.group(2))))
        for m in lex.era_re.finditer(low):
            kind = lex.eras[re.sub(r"\s+", " ", m.group(0))]
            if kind == "recent":
                setr(self.year_hi - lex.recent_span + 1, None)
            elif kind == "classic":
                setr(None, self.year_hi - lex.classic_age)
            else:
                p.era = kind  # "older" / "newer": resolved against the items shown last
            spans.append(m.span())
        return _blank(low, spans)

    def _decade_start(self, tok: str) -> int | None:
        """"80s" / "1980s" / "'80s" / "eighties" / "80" / "八十" -> 1980."""
        tok = tok.strip("'’ ").lower()
        if tok in self.lex.decades:
            return self.lex.decades[tok]
        m = re.fullmatch(r"(1[89]\d0|20[0-2]0)'?s?|(?:19)?(\d)0'?s?", tok)
        if not m:
            return None
        return int(m.group(1)) if m.group(1) else 1900 + int(m.group(2)) * 10

    # ------------------------------------------------------------------ counts
    def _number(self, tok: str) -> int | None:
        tok = tok.strip().lower()
        if tok.isdigit():
            return int(tok)
        if tok in self.lex.numbers:
            return self.lex.numbers[tok]
        if re.fullmatch(r"[一二两三四五六七八九十]+", tok):  # Chinese numerals up to 99
            if "十" in tok:
                tens, _, ones = tok.partition("十")
                return (self.lex.numbers.get(tens, 1) if tens else 1) * 10 + (self.lex.numbers.get(ones, 0) if ones else 0)
            return self.lex.numbers.get(tok)
        return None

    def _count(self, low: str, p: Preferences) -> str:
        for pattern in (self._count_zh, self._count_after, self._count_before, self._count_more):
            m = pattern.search(low)
            if m:
                n = self._number(m.group(1))
                if n:
                    p.count = max(1, min(self.max_count, n))
                    return low[: m.start(1)] + " " * (m.end(1) - m.start(1)) + low[m.end(1):]
        return low

    # ------------------------------------------------------------------ genres, negation, switches, audiences
    def _genres(self, low: str, p: Preferences) -> str:
        lex = self.lex
        masked = self._mask_questions(low)
        spans: list[tuple[int, int]] = []
        positive: list[tuple[int, int, tuple[str, ...]]] = []  # (start, end, genres) in text order
        for start, clause in self._clauses(masked):
            ops = [(m.end(), "drop" if re.sub(r"\s+", " ", m.group(0)) in lex.drops else "neg",
                    bool(CJK.search(m.group(0)))) for m in lex.operator_re.finditer(clause)]
            afters = [(m.start(), "drop" if m.group(0) in lex.drops_after else "neg")
                      for m in lex.after_operator_re.finditer(clause)]
            for m, genres, audience in self._genre_words(clause):
                # a Chinese negation stops at 的: "不是爱情片的喜剧" = a comedy that is not a romance
                before = [kind for end, kind, zh in ops
                          if end <= m.start() and not (zh and "的" in clause[end:m.start()])]
                after = [kind for pos, kind in afters if pos >= m.end()]
                kind = before[-1] if before else (after[0] if after else None)
                spans.append((start + m.start(), start + m.end()))
                if audience is not None:
                    if kind is None and not p.audience_genres:
                        p.audience_genres = [audience.narrow] + [g for g in audience.genres if g != audience.narrow]
                    elif kind == "neg":
                        _add(p.exclude_genres, [audience.narrow])
                elif kind is None:
                    positive.append((start + m.start(), start + m.end(), genres))
                else:
                    _add(p.exclude_genres if kind == "neg" else p.drop_genres, genres)
        p.genres, p.genre_mode = self._combine(low, positive)
        p.genres = [g for g in p.genres if g not in p.exclude_genres]
        p.drop_genres = [g for g in p.drop_genres if g not in p.genres and g not in p.exclude_genres]
        if len(p.genres) < 2:
            p.genre_mode = "any"
        return _blank(low, spans)

    def _genre_words(self, clause: str):
        """Genre words, two-genre words ("romcom") and audience words of a clause, in text order."""
        lex = self.lex
        found = [(m, (lex.genre_of[re.sub(r"\s+", " ", m.group(0))],), None) for m in lex.genre_re.finditer(clause)]
        found += [(m, lex.compounds[m.group(0)], None) for m in lex.compound_re.finditer(clause)]
        found += [(m, (), lex.audience_of[re.sub(r"\s+", " ", m.group(0))]) for m in lex.audience_re.finditer(clause)]
        found.sort(key=lambda f: (f[0].start(), -f[0].end()))
        out, last_end = [], -1
        for f in found:  # the longest phrase wins where two overlap ("kids" inside "for kids")
            if f[0].start() >= last_end:
                out.append(f)
                last_end = f[0].end()
        return out

    @staticmethod
    def _combine(low: str, positive: list[tuple[int, int, tuple[str, ...]]]) -> tuple[list[str], str]:
        """Wanted genres and their mode from the positive genre words (see the module docstring)."""
        groups: list[list[str]] = []
        joins: list[str] = []
        prev_end = None
        for start, end, genres in positive:
            gap = low[prev_end:start] if prev_end is not None else None
            if gap is not None and ADJACENT.fullmatch(gap):
                groups[-1] = _union(groups[-1], list(genres))
            else:
                if gap is not None:
                    joins.append("or" if OR_WORD.search(gap) else "and" if AND_WORD.search(gap) else "list")
                groups.append(list(genres))
            prev_end = end
        wanted = _union(*groups) if groups else []
        if len(groups) == 1:
            return wanted, "all" if len(wanted) > 1 else "any"
        if any(len(g) > 1 for g in groups) or "and" in joins:
            return wanted, "blend"
        return wanted, "any"

    def _mask_questions(self, low: str) -> str:
        """Hide the negation words of questions and idioms ("有没有", "why not", "特别") from the scan."""
        chars = list(low)
        spans = [m.span() for m in self.lex.question_re.finditer(low)]
        spans += [m.span() for m in AB_QUESTION.finditer(low)]
        spans += [m.span() for m in NEGATIVE_QUESTION.finditer(low)]
        spans += [m.span() for m in NOT_NEGATION.finditer(low)]
        for s, e in spans:
            chars[s:e] = MASK * (e - s)
        return "".join(chars)

    def _clauses(self, text: str) -> list[tuple[int, str]]:
        cuts = [0]
        for m in CLAUSE.finditer(text):
            cuts.append(m.end())
        inside = [m.span() for m in self.lex.operator_re.finditer(text)]  # "anything but", "but not"
        for m in self.lex.boundary_re.finditer(text):
            if not any(s <= m.start() < e for s, e in inside):
                cuts.append(m.start())
        cuts = sorted(set(cuts)) + [len(text)]
        return [(a, text[a:b]) for a, b in zip(cuts, cuts[1:]) if b > a]

    # ------------------------------------------------------------------ moods and remainder
    def _moods(self, low: str, p: Preferences) -> str:
        spans = []
        for m in self.lex.mood_re.finditer(low):
            mood = re.sub(r"\s+", " ", m.group(0))
            if mood not in p.moods:
                p.moods.append(mood)
            for g in self.lex.mood_genres[mood]:
                if g not in p.mood_genres and g not in p.exclude_genres:
                    p.mood_genres.append(g)
            spans.append(m.span())
        return _blank(low, spans)

    def _remainder(self, low: str) -> str:
        low = self.lex.operator_re.sub(" ", low)
        low = self.lex.anchor_cue_re.sub(" ", low)
        low = self.lex.intent_re("anything").sub(" ", low)
        low = self.lex.intent_re("injection").sub(" ", low)
        low = self.lex.intent_re("reset").sub(" ", low)
        words = [w for w in re.findall(r"[a-z][a-z'-]*[a-z]|[a-z]", low)
                 if w not in FILLER and not self.lex.is_vocabulary(w) and 1 < len(w) <= 30]
        return " ".join(words[:24])[:MAX_QUERY_CHARS]
