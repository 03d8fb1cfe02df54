"""Writing one request per type from a test user's held-out target, deterministically from a seed.

Types (phrasings in `phrasings.toml`, one chosen per user and type):
- `vague`: "What should I watch next?" (asks for nothing in particular);
- `genre`: one of the target's genres ("Any good sci-fi movies?");
- `genre-decade`: that genre and the target's decade ("sci-fi movies from the 80s, please.");
- `loved`: "I loved <X>", X a film of the user's visible history that shares a genre with the target
  and that the user rated highly (≥ `min_rating` when the log has ratings);
- `genre-zh`: the genre request in Chinese ("有什么好看的科幻片吗？").
The genre is drawn once per user, so `genre`, `genre-decade` and `genre-zh` ask for the same genre. A
request never names the target: a phrasing that would contain its title is not used, and a user whose
every option does is skipped for that type (skips are counted with their reason).
"""
from __future__ import annotations

import re
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import numpy as np

from finetune.evaluation.conversational.attributes import RequestAttributes
from retrieval.catalog.schema import Catalog, Interactions, Item
from retrieval.config.conversational import REQUEST_TYPES

TRAILING_ARTICLE = re.compile(r"^(?P<rest>.+), (?P<article>The|A|An)$")
AKA = re.compile(r"\s*\([^()]*\)\s*$")  # "Seven (Se7en)": the alternative title in parentheses


@cache
def phrasings() -> dict:
    """The phrasings and genre words of `phrasings.toml` (package data)."""
    text = resources.files(__package__).joinpath("phrasings.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


@dataclass(frozen=True)
class BenchUser:
    """A test user as the benchmark sees them: visible history (oldest first) and the held-out target."""

    user: int  # index into Interactions.user_ids
    user_id: str
    history: tuple[int, ...]  # catalog indices the systems may see, chronological
    ratings: tuple[float, ...]  # the user's rating of each history item (same order)
    target: int  # catalog index


@dataclass(frozen=True)
class BenchRequest:
    user_id: str
    type: str
    text: str
    target: int  # catalog index
    attributes: RequestAttributes

    def to_json(self, catalog: Catalog) -> dict:
        return {"user_id": self.user_id, "type": self.type, "text": self.text,
                "target": catalog.at(self.target).item_id, "attributes": self.attributes.to_json()}


@dataclass
class RequestSet:
    requests: list[BenchRequest] = field(default_factory=list)
    skipped: dict[str, Counter] = field(default_factory=dict)  # type -> reason -> users

    def of_type(self, kind: str) -> list[BenchRequest]:
        return [r for r in self.requests if r.type == kind]


def spoken_title(title: str) -> str:
    """A catalog title as a person types it: "Horseman on the Roof, The (Hussard …)" -> "The Horseman on the Roof"."""
    text = title.strip()
    while AKA.search(text) and AKA.sub("", text):
        text = AKA.sub("", text)
    match = TRAILING_ARTICLE.match(text)
    return f"{match['article']} {match['rest']}" if match else text


def names_title(text: str, item: Item) -> bool:
    """Whether `text` contains the item's title (or its spoken form) as whole words, ignoring case."""
    folded = text.casefold()
    for title in {item.title, spoken_title(item.title)}:
        title = title.strip().casefold()
        if title and re.search(rf"(?<!\w){re.escape(title)}(?!\w)", folded):
            return True
    return False


def capitalised(text: str) -> str:
    """A sentence starts with a capital ("sci-fi movies …" -> "Sci-fi movies …")."""
    return text[:1].upper() + text[1:]


def decade_words(year: int) -> tuple[str, str]:
    """("80s", "1980s") for 1984; ("2000s", "2000s") for 2003."""
    start = year // 10 * 10
    return (f"{start % 100:02d}s" if 1900 <= start < 2000 else f"{start}s"), f"{start}s"


def bench_users(interactions: Interactions, histories: Sequence[tuple[int, ...]], users: Sequence[int],
                targets: Sequence[int]) -> list[BenchUser]:
    """`BenchUser`s from visible histories (catalog indices per user, in time order) and their targets;
    each history item carries the user's best rating of it in `interactions` (the visible log)."""
    out = []
    for user, history, target in zip(users, histories, targets):
        rows = np.flatnonzero(interactions.users == user)
        best: dict[int, float] = {}
        for item, rating in zip(interactions.items[rows].tolist(), interactions.ratings[rows].tolist()):
            best[item] = max(rating, best.get(item, rating))
        out.append(BenchUser(user=int(user), user_id=interactions.user_ids[user], history=tuple(history),
                             ratings=tuple(best.get(i, 0.0) for i in history), target=int(target)))
    return out


class RequestWriter:
    """Writes the requests of every (user, type); `rng` streams are keyed by (seed, user, type), so a
    request does not change when other users or types are added to a run."""

    def __init__(self, catalog: Catalog, seed: int = 0, min_rating: float = 4.0, rated: bool = True):
        self.catalog = catalog
        self.seed = seed
        self.min_rating = min_rating
        self.rated = rated  # False for an implicit log (all ratings equal): every history item counts as liked
        words = phrasings()
        self.templates: dict[str, list[str]] = words["phrasings"]
        self.genre_words: dict[str, str] = words["genre_words"]
        self.genre_words_zh: dict[str, str] = words["genre_words_zh"]
        missing = [t for t in REQUEST_TYPES if not self.templates.get(t)]
        if missing:
            raise ValueError(f"phrasings.toml has no phrasings for {missing}")

    def write(self, users: Sequence[BenchUser], types: Sequence[str] = REQUEST_TYPES) -> RequestSet:
        unknown = [t for t in types if t not in REQUEST_TYPES]
        if unknown:
            raise ValueError(f"unknown request type(s) {unknown}; known: {', '.join(REQUEST_TYPES)}")
        out = RequestSet(skipped={t: Counter() for t in types})
        for user in users:
            for kind in types:
                request = self.request(user, kind)
                if isinstance(request, BenchRequest):
                    out.requests.append(request)
                else:
                    out.skipped[kind][request] += 1
        leaking = [r for r in out.requests if names_title(r.text, self.catalog.at(r.target))]
        if leaking:  # the invariant the benchmark rests on; `request` never lets one through
            raise RuntimeError(f"request {leaking[0].text!r} names its target")
        return out

    def request(self, user: BenchUser, kind: str) -> BenchRequest | str:
        """The user's request of this type, or the reason it is skipped."""
        target = self.catalog.at(user.target)
        rng = np.random.default_rng([self.seed, user.user, REQUEST_TYPES.index(kind)])
        genre = self.genre(user)
        fields: dict[str, str] = {}
        attributes = RequestAttributes()
        if kind in ("genre", "genre-decade", "genre-zh"):
            if genre is None:
                return "target has no genre"
            fields = {"genre": self.genre_words.get(genre, genre.lower()), "genre_zh": self.genre_words_zh.get(genre, "")}
            if kind == "genre-zh" and not fields["genre_zh"]:
                return f"no Chinese word for genre {genre!r}"
            attributes = RequestAttributes(genres=frozenset({genre}))
            if kind == "genre-decade":
                if target.year is None:
                    return "target has no year"
                start = target.year // 10 * 10
                fields["decade"], fields["decade_long"] = decade_words(target.year)
                attributes = RequestAttributes(genres=frozenset({genre}), year_min=start, year_max=start + 9)
        elif kind == "loved":
            liked = self.loved_item(user, rng)
            if liked is None:
                return "no highly rated history film sharing a genre with the target"
            fields = {"title": spoken_title(liked.title)}
            attributes = RequestAttributes(genres=frozenset(liked.genres), anchor=liked.item_id)
        options = [capitalised(t.format(**fields)) for t in self.templates[kind]]
        start = int(rng.integers(len(options)))
        for text in options[start:] + options[:start]:  # the seeded phrasing first, then the others
            if not names_title(text, target):
                return BenchRequest(user_id=user.user_id, type=kind, text=text, target=user.target,
                                    attributes=attributes)
        return "every phrasing contains the target's title"

    def genre(self, user: BenchUser) -> str | None:
        """One of the target's genres, drawn once per user (shared by the genre request types)."""
        genres = sorted(self.catalog.at(user.target).genres)
        if not genres:
            return None
        return genres[int(np.random.default_rng([self.seed, user.user]).integers(len(genres)))]

    def loved_item(self, user: BenchUser, rng: np.random.Generator) -> Item | None:
        """A seeded pick among the user's highly rated history films that share a genre with the target
        and whose titles neither contain nor are contained in the target's."""
        target = self.catalog.at(user.target)
        pool = []
        for index, rating in dict(zip(user.history, user.ratings)).items():
            item = self.catalog.at(index)
            if index == user.target or (self.rated and rating < self.min_rating):
                continue
            if not set(item.genres) & set(target.genres):
                continue
            if names_title(spoken_title(item.title), target) or names_title(target.title, item):
                continue
            pool.append(item)
        if not pool:
            return None
        pool.sort(key=lambda it: self.catalog.index_of(it.item_id))
        return pool[int(rng.integers(len(pool)))]


def has_ratings(interactions: Interactions) -> bool:
    """True when the log carries explicit ratings (not one constant value, as implicit logs do)."""
    return len(interactions) > 0 and bool(np.unique(interactions.ratings).size > 1)
