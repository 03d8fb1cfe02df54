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
class Lexicon:
    genre_of: dict[str, str]  # synonym -> catalog genre
    mood_genres: dict[str, tuple[str, ...]]
    negations: tuple[str, ...]
    boundaries: tuple[str, ...]
    numbers: dict[str, int]
    decades: dict[str, int]
    recent_span: int
    classic_age: int
    eras: dict[str, str]  # word -> "recent" | "classic" | "older" | "newer"
    title_triggers: dict[str, str]  # phrase -> relation
    trailing: tuple[str, ...]
    not_titles: frozenset[str]
    intents: dict[str, tuple[str, ...]]
    ordinals: dict[str, int]

    # compiled patterns
    @property
    def genre_re(self) -> re.Pattern[str]:
        return _compiled(self, "genre")

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
        return (word in self.genre_of or word in self.mood_genres or word in self.not_titles
                or word in self.numbers or word in self.eras or word in self.negations
                or word in self.decades or bool(re.fullmatch(r"\d+|'?\d0s|\d{4}s", word)))


_CACHE: dict[tuple[int, str], re.Pattern[str]] = {}


def _compiled(lex: Lexicon, what: str) -> re.Pattern[str]:
    key = (id(lex), what)
    if key not in _CACHE:
        if what.startswith("intent:"):
            phrases = list(lex.intents[what.split(":", 1)[1]])
        else:
            phrases = {"genre": list(lex.genre_of), "mood": list(lex.mood_genres), "negation": list(lex.negations),
                       "boundary": list(lex.boundaries), "trigger": list(lex.title_triggers),
                       "trailing": list(lex.trailing), "era": list(lex.eras),
                       "not_titles": list(lex.not_titles)}[what]
        _CACHE[key] = phrase_pattern(phrases)
    return _CACHE[key]


@lru_cache(maxsize=4)
def load_lexicon(path: Path = LEXICON_PATH) -> Lexicon:
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    genre_of = {syn.lower(): genre for genre, syns in data["genres"].items() for syn in syns}
    eras = {w: kind for kind in ("recent", "classic", "older", "newer") for w in data["eras"][kind]}
    triggers: dict[str, str] = {}
    for relation in ("like", "dislike", "seen"):
        for phrase in data["titles"][relation]:
            triggers.setdefault(phrase, relation)
    return Lexicon(
        genre_of=genre_of,
        mood_genres={m.lower(): tuple(g) for m, g in data["moods"].items()},
        negations=tuple(data["negation"]["words"]),
        boundaries=tuple(data["negation"]["boundaries"]),
        numbers={k: int(v) for k, v in data["numbers"].items()},
        decades={k: int(v) for k, v in data["decades"].items()},
        recent_span=int(data["eras"]["recent_span"]),
        classic_age=int(data["eras"]["classic_age"]),
        eras=eras,
        title_triggers=triggers,
        trailing=tuple(data["titles"]["trailing"]),
        not_titles=frozenset(data["titles"]["not_titles"]),
        intents={k: tuple(v) for k, v in data["intents"].items()},
        ordinals={k: int(v) for k, v in data["ordinals"].items()},
    )
