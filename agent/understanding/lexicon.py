"""The parser's vocabulary, loaded from lexicon.toml and compiled into phrase regexes once."""
from __future__ import annotations

import importlib.resources
import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

LEXICON_PATH = Path(str(importlib.resources.files(__package__) / "lexicon.toml"))  # package data


def phrase_pattern(phrases: list[str] | set[str]) -> re.Pattern[str]:
    """One regex matching any phrase, longest first; ASCII phrases only at word boundaries
    (Chinese has no spaces, so CJK phrases match anywhere)."""
    parts = []
    for phrase in sorted(set(phrases), key=len, reverse=True):
        body = r"\s+".join(re.escape(w) for w in phrase.split())
        if phrase.isascii():
            body = rf"(?<![a-z0-9']){body}(?![a-z0-9])"
        parts.append(body)
    return re.compile("|".join(parts) if parts else r"(?!x)x")


@dataclass(frozen=True)
class Audience:
    name: str
    genres: tuple[str, ...]  # wanted when the audience is named alone (any of them)
    narrow: str  # the genre that narrows another wanted genre ("family comedy" = Comedy + this)


@dataclass(frozen=True)
class Lexicon:
    genre_of: dict[str, str]  # synonym -> catalog genre
    compounds: dict[str, tuple[str, ...]]  # "romcom" -> (Romance, Comedy)
    audience_of: dict[str, Audience]  # word -> audience
    mood_genres: dict[str, tuple[str, ...]]
    negations: tuple[str, ...]
    negations_after: tuple[str, ...]
    questions: tuple[str, ...]
    drops: tuple[str, ...]
    drops_after: tuple[str, ...]
    boundaries: tuple[str, ...]
    numbers: dict[str, int]
    decades: dict[str, int]
    recent_span: int
    classic_age: int
    eras: dict[str, str]  # word -> "recent" | "classic" | "older" | "newer"
    title_triggers: dict[str, str]  # phrase -> relation
    not_seen: tuple[str, ...]
    opinion_after: dict[str, str]  # "brilliant" -> like, "awful" -> dislike (after "X was …")
    linking: tuple[str, ...]
    intensifiers: tuple[str, ...]
    anchor_cues: tuple[str, ...]
    trailing: tuple[str, ...]
    not_titles: frozenset[str]
    titles_zh: dict[str, tuple[str, ...]]  # cue kind -> words
    intents: dict[str, tuple[str, ...]]
    ordinals: dict[str, int]
    help: dict[str, str]  # language -> the "nothing understood" line

    # compiled patterns
    @property
    def genre_re(self) -> re.Pattern[str]:
        return _compiled(self, "genre")

    @property
    def compound_re(self) -> re.Pattern[str]:
        return _compiled(self, "compound")

    @property
    def audience_re(self) -> re.Pattern[str]:
        return _compiled(self, "audience")

    @property
    def operator_re(self) -> re.Pattern[str]:
        """Negation and "forget" words together, so the longer phrase wins ("no longer" over "no")."""
        return _compiled(self, "operator")

    @property
    def after_operator_re(self) -> re.Pattern[str]:
        return _compiled(self, "after_operator")

    @property
    def question_re(self) -> re.Pattern[str]:
        return _compiled(self, "question")

    @property
    def anchor_cue_re(self) -> re.Pattern[str]:
        return _compiled(self, "anchor_cue")

    @property
    def not_seen_re(self) -> re.Pattern[str]:
        return _compiled(self, "not_seen")

    @property
    def opinion_re(self) -> re.Pattern[str]:
        """" was (really) brilliant" after a title; the opinion word is group "op"."""
        key = (id(self), "opinion")
        if key not in _CACHE:
            def alt(ws):
                return "|".join(r"\s+".join(map(re.escape, w.split())) for w in sorted(ws, key=len, reverse=True))
            _CACHE[key] = re.compile(rf"(?:\s+(?:{alt(self.linking)})|'s)\s+(?:(?:{alt(self.intensifiers)})\s+)*"
                                     rf"(?P<op>{alt(self.opinion_after)})(?![a-z])")
        return _CACHE[key]

    def zh_cue_re(self, kind: str) -> re.Pattern[str]:
        return _compiled(self, "zh:" + kind)

    @property
    def mood_re(self) -> re.Pattern[str]:
        return _compiled(self, "mood")

    @property
    def negation_re(self) -> re.Pattern[str]:
        return _compiled(self, "negation")

    @property
    def boundary_re(self) -> re.Pattern[str]:
        return _compiled(self, "boundary")

    @property
    def trigger_re(self) -> re.Pattern[str]:
        return _compiled(self, "trigger")

    @property
    def not_titles_re(self) -> re.Pattern[str]:
        return _compiled(self, "not_titles")

    @property
    def trailing_re(self) -> re.Pattern[str]:
        return _compiled(self, "trailing")

    @property
    def era_re(self) -> re.Pattern[str]:
        return _compiled(self, "era")

    @property
    def number_words(self) -> str:
        """Alternation of spelled-out numbers for use inside larger regexes."""
        return "|".join(re.escape(w) for w in sorted(self.numbers, key=len, reverse=True))

    def intent_re(self, name: str) -> re.Pattern[str]:
        return _compiled(self, "intent:" + name)

    def is_vocabulary(self, word: str) -> bool:
        """True for words the parser understands on its own (genres, moods, fillers, numbers, eras)."""
        return (word in self.genre_of or word in self.compounds or word in self.audience_of
                or word in self.mood_genres or word in self.not_titles
                or word in self.numbers or word in self.eras or word in self.negations
                or word in self.decades or bool(re.fullmatch(r"\d+|'?\d0s|\d{4}s", word)))


_CACHE: dict[tuple[int, str], re.Pattern[str]] = {}


def _compiled(lex: Lexicon, what: str) -> re.Pattern[str]:
    key = (id(lex), what)
    if key not in _CACHE:
        if what.startswith("intent:"):
            phrases = list(lex.intents[what.split(":", 1)[1]])
        elif what.startswith("zh:"):
            phrases = list(lex.titles_zh[what.split(":", 1)[1]])
        else:
            phrases = {"genre": list(lex.genre_of), "mood": list(lex.mood_genres), "negation": list(lex.negations),
                       "boundary": list(lex.boundaries), "trigger": list(lex.title_triggers),
                       "trailing": list(lex.trailing), "era": list(lex.eras),
                       "not_titles": list(lex.not_titles), "compound": list(lex.compounds),
                       "audience": list(lex.audience_of), "operator": [*lex.negations, *lex.drops],
                       "after_operator": [*lex.negations_after, *lex.drops_after],
                       "question": list(lex.questions), "anchor_cue": list(lex.anchor_cues),
                       "not_seen": list(lex.not_seen)}[what]
        _CACHE[key] = phrase_pattern(phrases)
    return _CACHE[key]


@lru_cache(maxsize=4)
def load_lexicon(path: Path = LEXICON_PATH) -> Lexicon:
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    genre_of = {syn.lower(): genre for genre, syns in data["genres"].items() for syn in syns}
    eras = {w: kind for kind in ("recent", "classic", "older", "newer") for w in data["eras"][kind]}
    triggers: dict[str, str] = {}
    titles = data["titles"]
    for relation in ("like", "anchor", "dislike", "seen"):
        for phrase in titles[relation]:
            triggers.setdefault(phrase, relation)
    opinion_after = {w: "like" for w in titles["like_after"]} | {w: "dislike" for w in titles["dislike_after"]}
    audience_of = {}
    for name, spec in data["audiences"].items():
        audience = Audience(name, tuple(spec["genres"]), spec["narrow"])
        audience_of.update({w.lower(): audience for w in spec["words"]})
    return Lexicon(
        genre_of=genre_of,
        compounds={w.lower(): tuple(g) for w, g in data["compounds"].items()},
        audience_of=audience_of,
        mood_genres={m.lower(): tuple(g) for m, g in data["moods"].items()},
        negations=tuple(data["negation"]["words"]),
        negations_after=tuple(data["negation"]["after"]),
        questions=tuple(data["negation"]["questions"]),
        drops=tuple(data["switch"]["drop"]),
        drops_after=tuple(data["switch"]["drop_after"]),
        boundaries=tuple(data["negation"]["boundaries"]),
        numbers={k: int(v) for k, v in data["numbers"].items()},
        decades={k: int(v) for k, v in data["decades"].items()},
        recent_span=int(data["eras"]["recent_span"]),
        classic_age=int(data["eras"]["classic_age"]),
        eras=eras,
        title_triggers=triggers,
        not_seen=tuple(titles["not_seen"]),
        opinion_after=opinion_after,
        linking=tuple(titles["linking"]),
        intensifiers=tuple(titles["intensifiers"]),
        anchor_cues=tuple(titles["anchor_cues"]),
        trailing=tuple(titles["trailing"]),
        not_titles=frozenset(titles["not_titles"]),
        titles_zh={k: tuple(v) for k, v in data["titles_zh"].items()},
        intents={k: tuple(v) for k, v in data["intents"].items()},
        ordinals={k: int(v) for k, v in data["ordinals"].items()},
        help=dict(data["help"]),
    )
