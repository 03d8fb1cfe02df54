"""Post-check for generated text: every genre, year / decade and catalog title it names must be true of the item
(or asked for by the user). A small model happily writes "a 1980s horror classic" about a 1995 comedy; such text
is rejected and the caller falls back to a fact-based template.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from retrieval.catalog.schema import Catalog, Item
from retrieval.evidence import Evidence, numbers_in

# Words that name a genre, per canonical genre (MovieLens names plus common ones other catalogs use). A genre
# word outside the catalog's own list still counts: naming "fantasy" for a film not tagged so is unsupported.
GENRE_WORDS: dict[str, tuple[str, ...]] = {
    "action": ("action", "action-packed"),
    "adventure": ("adventure", "adventures", "adventurous"),
    "animation": ("animation", "animated", "cartoon"),
    "children's": ("children's", "childrens", "children", "kids", "kid's", "family film", "family movie"),
    "comedy": ("comedy", "comedies", "comedic", "comic"),
    "crime": ("crime", "crimes", "gangster", "heist"),
    "documentary": ("documentary", "documentaries"),
    "drama": ("drama", "dramas"),
    "fantasy": ("fantasy", "fantasies"),
    "film-noir": ("film-noir", "film noir", "noir"),
    "horror": ("horror",),
    "musical": ("musical", "musicals"),
    "mystery": ("mystery", "mysteries"),
    "romance": ("romance", "romances", "romantic", "rom-com"),
    "sci-fi": ("sci-fi", "science fiction", "science-fiction", "scifi", "sf"),
    "thriller": ("thriller", "thrillers"),
    "war": ("war",),
    "western": ("western", "westerns"),
}
# Chinese genre words (the genre names Chinese replies use, prompts/reply_zh.toml, and common variants). Chinese has
# no word boundaries, so they are found as substrings, outside the 《…》 that hold Chinese film names.
GENRE_WORDS_ZH: dict[str, tuple[str, ...]] = {
    "action": ("动作",), "adventure": ("冒险",), "animation": ("动画",), "children's": ("儿童",),
    "comedy": ("喜剧",), "crime": ("犯罪",), "documentary": ("纪录",), "drama": ("剧情",), "fantasy": ("奇幻",),
    "film-noir": ("黑色电影",), "horror": ("恐怖",), "musical": ("歌舞",), "mystery": ("悬疑",),
    "romance": ("爱情",), "sci-fi": ("科幻",), "thriller": ("惊悚",), "war": ("战争",), "western": ("西部",),
}
_ZH_GENRE = {w: canon for canon, words in GENRE_WORDS_ZH.items() for w in words}
_ZH_GENRE_RE = re.compile("|".join(sorted(map(re.escape, _ZH_GENRE), key=len, reverse=True)))
_ZH_FILM_NAME = re.compile(r"《[^》]*》")
_DECADE_WORDS = {"twenties": 1920, "thirties": 1930, "forties": 1940, "fifties": 1950, "sixties": 1960,
                 "seventies": 1970, "eighties": 1980, "nineties": 1990}
_YEAR = re.compile(r"(?<![\d£$€])(1[89]\d\d|20\d\d)(?:'?s\b)?")
_SHORT_DECADE = re.compile(r"(?<![\w\d])'?([2-9]0)'?s\b", re.IGNORECASE)
# "Some Words (1972)": whatever stands before a year in brackets is a title claim. The lazy group starts at the
# last capitalised run, so "I recommend The Godfather (1972)" yields "The Godfather".
_TITLE_BEFORE_YEAR = re.compile(r"([^.!?;:()\n\"]{1,80}?:?[^.!?;()\n\"]{0,60}?) \((1[89]\d\d|20\d\d)\)")
# A sequel or subtitle glued onto a real title ("The Godfather: The Ultimate Destruction") invents a film.
_CONTINUATION = re.compile(r"\s*(:\s*[A-Z0-9]|\s+(Part|Returns|Reloaded|Strikes|Rises|II|III|IV|[2-9])\b)")
_DECADE_WORD = re.compile(r"\b(" + "|".join(_DECADE_WORDS) + r")\b", re.IGNORECASE)


def canonical_genre(name: str) -> str:
    key = name.strip().lower()
    for canon, words in GENRE_WORDS.items():
        if key == canon or key in words:
            return canon
    return key


@dataclass(frozen=True)
class Mentions:
    genres: frozenset[str] = frozenset()  # canonical genre names
    years: frozenset[int] = frozenset()  # exact years
    decades: frozenset[int] = frozenset()  # 1990 for "90s", "1990s", "nineties"
    titles: frozenset[str] = frozenset()  # item ids of catalog titles named


@dataclass(frozen=True)
class Verdict:
    ok: bool
    problems: tuple[str, ...] = field(default_factory=tuple)


def _norm_title(title: str) -> str:
    return re.sub(r"^(the|a|an) ", "", title.lower()).strip()


_MASK = "this film"
_CONTRAST = re.compile(r"\b(not|no|isn't|isn’t|without|instead|rather than|although|though|but)\b", re.IGNORECASE)


def _mask_titles(text: str, items: Iterable[Item]) -> str:
    """`text` with each item's "Title (year)" and bare title replaced by a neutral phrase (longest first).
    A bracketed year after a masked title stays only when it is not the item's own year."""
    for it in sorted(items, key=lambda i: -len(i.title)):
        if it.year:
            text = re.sub(re.escape(it.title) + r"\s*\(" + str(it.year) + r"\)", _MASK, text, flags=re.IGNORECASE)
        text = re.sub(r"(?<!\w)" + re.escape(it.title) + r"(?!\w)", _MASK, text, flags=re.IGNORECASE)
    return text


class GroundingChecker:
    """Finds what a text claims (genres, years, decades, titles) and checks each claim against catalog facts."""

    def __init__(self, catalog: Catalog | Iterable[Item], min_title_chars: int = 4):
        items = list(catalog)
        self._items = items
        self.catalog_genres = {canonical_genre(g) for it in items for g in it.genres}
        words = {w: canon for canon, ws in GENRE_WORDS.items() for w in (canon, *ws)}
        words.update({g: g for g in self.catalog_genres})
        self._genre_word = words
        self._genre_re = re.compile(r"(?<![\w-])(" + "|".join(sorted(map(re.escape, words), key=len, reverse=True))
                                    + r")(?![\w-])", re.IGNORECASE)
        # Titles: multi-word titles match case-insensitively; one-word titles ("Heat", "Alien") only when
        # capitalised as written, so ordinary words are not mistaken for titles.
        self._title_ids: dict[str, set[str]] = {}
        self._title_of = {it.item_id: _norm_title(it.title) for it in items}
        for it in items:
            t = _norm_title(it.title)
            if len(t) >= min_title_chars and not t.isdigit():
                self._title_ids.setdefault(t, set()).add(it.item_id)
        multi = sorted((t for t in self._title_ids if " " in t), key=len, reverse=True)
        single = sorted({re.sub(r"^(The|A|An) ", "", it.title) for it in items
                         if " " not in _norm_title(it.title) and _norm_title(it.title) in self._title_ids},
                        key=len, reverse=True)
        self._multi_re = re.compile(r"(?<!\w)(" + "|".join(map(re.escape, multi)) + r")(?!\w)", re.IGNORECASE) \
            if multi else None
        self._single_re = re.compile(r"(?<!\w)(" + "|".join(map(re.escape, single)) + r")(?!\w)") if single else None

    def mentions(self, text: str) -> Mentions:
        genres = {self._genre_word[m.group(1).lower()] for m in self._genre_re.finditer(text)}
        genres |= {_ZH_GENRE[m.group(0)] for m in _ZH_GENRE_RE.finditer(_ZH_FILM_NAME.sub("", text))}
        years, decades = set(), set()
        for m in _YEAR.finditer(text):
            value = int(m.group(1))
            if m.group(0).endswith("s"):  # "1990s"
                decades.add(value - value % 10)
            else:
                years.add(value)
        decades |= {1900 + int(m.group(1)) for m in _SHORT_DECADE.finditer(text)}
        decades |= {_DECADE_WORDS[m.group(1).lower()] for m in _DECADE_WORD.finditer(text)}
        titles: set[str] = set()
        for rx in (self._multi_re, self._single_re):
            if rx is not None:
                for m in rx.finditer(text):
                    titles |= self._title_ids.get(_norm_title(m.group(1)), set())
        return Mentions(frozenset(genres), frozenset(years), frozenset(decades), frozenset(titles))

    def check(self, text: str, item: Item, allowed_text: str = "", allowed_items: Iterable[Item] = (),
              evidence: Evidence | None = None) -> Verdict:
        """Reject claims not true of `item`; `allowed_text` (the user's own words) and `allowed_items` (titles the
        user named, e.g. liked films) widen what may be mentioned. With the pick's `evidence`, every number stated
        must be one of the evidence's (or the item's year), and the evidence's titles may be named."""
        allowed_items = list(allowed_items)
        if evidence is not None:
            by_label = {it.label: it for it in self._items}
            allowed_items += [by_label[label] for _, label in evidence.titles() if label in by_label]
        invented = self._invented_titles(text, [item, *allowed_items])
        # The allowed titles themselves make no claim: "Kids in the Hall" names no children's film, and the
        # "Mr." or "!" inside a title is not a sentence break before an unknown name.
        text = _mask_titles(text, [item, *allowed_items])
        said = self.mentions(text)
        asked = self.mentions(allowed_text) if allowed_text else Mentions()
        item_genres = {canonical_genre(g) for g in item.genres}
        # years of the titles the user named may be quoted with them ("like The Terminator (1984)")
        true_years = {it.year for it in [item, *allowed_items] if it.year}
        true_decades = {y - y % 10 for y in true_years}
        ok_titles = {item.item_id} | {it.item_id for it in allowed_items} | asked.titles
        ok_title_text = [_norm_title(t.title) for t in [item, *allowed_items]]
        problems = [f"genre '{g}' is not a genre of {item.label}"
                    for g in sorted(self._unsupported_genres(text, item_genres, asked.genres))]
        problems += [f"year {y} is not the year of {item.label}" for y in sorted(said.years - true_years - asked.years)
                     if y - y % 10 not in asked.decades]
        problems += [f"decade {d}s does not fit {item.label}" for d in sorted(said.decades - true_decades
                                                                           - asked.decades)]
        problems += invented + self._unknown_before_year(text)
        if evidence is not None:
            allowed_numbers = evidence.numbers() | {str(item.year)} | numbers_in(allowed_text)
            problems += [f"number {n} is not in the evidence of {item.label}"
                         for n in sorted(numbers_in(_ZH_FILM_NAME.sub("", text)) - allowed_numbers)]
        for other in sorted(said.titles - ok_titles):
            # a title that is part of an allowed title ("Alien" inside "Aliens") is not a claim about another film
            if not any(self._title_of.get(other, "\0") in t for t in ok_title_text):
                problems.append(f"names another catalog title (item {other})")
        return Verdict(ok=not problems, problems=tuple(problems))


    def _unsupported_genres(self, text: str, item_genres: set[str], asked: frozenset[str]) -> set[str]:
        """Genres named that the item lacks. One the user asked for passes only in a sentence that contrasts
        it ("not a thriller, but…"): "Toy Story is a sci-fi classic" stays false though sci-fi was asked for."""
        bad = set()
        for sentence in re.split(r"(?<=[.!?;])\s+", text):
            extra = self.mentions(sentence).genres - item_genres
            bad |= extra if not _CONTRAST.search(sentence) else extra - asked
        return bad

    def _invented_titles(self, text: str, allowed: list[Item]) -> list[str]:
        """Titles the text makes up around the allowed ones: extra subtitles, sequels, or an unknown name in
        front of a bracketed year."""
        allowed_titles = [_norm_title(it.title) for it in allowed]
        problems = []
        for it in allowed:
            for m in re.finditer(re.escape(it.title), text, re.IGNORECASE):
                tail = _CONTINUATION.match(text, m.end())
                if tail and not any(t.startswith(_norm_title(text[m.start():tail.end()])) for t in allowed_titles):
                    problems.append(f"invents a title around {it.label!r}: {text[m.start():tail.end() + 20]!r}")
        return problems

    @staticmethod
    def _unknown_before_year(masked: str) -> list[str]:
        """A name in front of a bracketed year, once the allowed titles are masked, is an unknown title."""
        return [f"names an unknown title before ({m.group(2)}): {m.group(1).strip()!r}"
                for m in _TITLE_BEFORE_YEAR.finditer(masked)]
