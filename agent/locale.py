"""The reply's wording in the user's language: strings from prompts/reply_en.toml and prompts/reply_zh.toml.

A turn answers in the language of its message (`Preferences.language`): the reply text, "what I understood", the
notes and the template explanations. Titles stay as the catalog spells them; a Chinese reply adds the Chinese name
where the alias table knows one ("Star Wars (1977)《星球大战》", agent/understanding/aliases_zh.tsv). Genres are shown
by their Chinese names in Chinese.

    loc = Locale("zh", names={"50": "星球大战"})
    loc.text("notes", "max_count", n=10); loc.title("50", "Star Wars (1977)"); loc.years(1990, 1999)
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import prompts

LANGUAGES = ("en", "zh")


@lru_cache(maxsize=None)
def strings(language: str) -> dict:
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, got {language!r}")
    return prompts.load_table(f"reply_{language}")


@dataclass(frozen=True)
class Note:
    """A note for the reply, worded later in the turn's language: a key of [notes] and its fields."""

    key: str
    fields: Mapping[str, object] = field(default_factory=dict)


class Locale:
    def __init__(self, language: str = "en", names: Mapping[str, str] | None = None):
        self.language = language
        self.table = strings(language)
        self.names = dict(names or {}) if language == "zh" else {}  # item_id -> Chinese name (shown in zh only)

    def text(self, section: str, key: str, **fields) -> str:
        return self.table[section][key].format(**fields)

    def note(self, note: Note) -> str:
        return self.text("notes", note.key, **note.fields)

    # ------------------------------------------------------------------ names
    def genre(self, name: str) -> str:
        return self.table["genres"].get(name, name)

    def genres(self, names: Sequence[str], separator: str | None = None) -> str:
        sep = self.table["summary"]["list_separator"] if separator is None else separator
        return sep.join(self.genre(g) for g in names)

    def title(self, item_id: str, label: str) -> str:
        name = self.names.get(item_id)
        return self.text("titles", "named", label=label, name=name) if name else self.text("titles", "plain", label=label)

    def titles(self, pairs: Sequence[tuple[str, str]]) -> str:
        return self.table["titles"]["separator"].join(self.title(i, label) for i, label in pairs)

    def years(self, year_min: int | None, year_max: int | None) -> str:
        """"from the 1990s" / "1990年代"; "" when no bound is set."""
        if year_min is None and year_max is None:
            return ""
        if year_min is not None and year_max is not None:
            if year_min == year_max:
                return self.text("years", "single", year=year_min)
            if year_min % 10 == 0 and year_max == year_min + 9:
                return self.text("years", "decade", decade=year_min)
            return self.text("years", "range", lo=year_min, hi=year_max)
        return self.text("years", "since", lo=year_min) if year_min is not None else self.text("years", "until",
                                                                                                  hi=year_max)

    # ------------------------------------------------------------------ the reply's frame
    def header(self, n: int, genres: Sequence[str], personal: bool, year_min: int | None, year_max: int | None) -> str:
        reply = self.table["reply"]
        if n == 0:
            return reply["nothing_found"]
        if genres:
            shown = [self.genre(g) for g in genres]
            if reply["lowercase_genres"] == "yes":
                shown = [g.lower() for g in shown]
            what = reply["what_genres"].format(genres=reply["genre_separator"].join(shown))
        else:
            what = reply["what_personal"] if personal else reply["what_plain"]
        years = self.years(year_min, year_max)
        return (reply["header_one"] if n == 1 else reply["header_many"]).format(
            n=n, what=what, years=reply["years"].format(years=years) if years else "")
