"""Evidence for a pick: why it is on the list, as typed data with exact numbers (docs/ARCHITECTURE.md §2).

The web card, the API, the template explanations and the LLM explainer all read the same `Evidence` object, and a
claim check may allow a number or a title in a sentence only when the evidence holds it (`Evidence.numbers`,
`Evidence.titles`). This module holds the types and the statistics that need only the catalog and the interaction
log (`LogEvidence`): co-occurrence between titles ("liked by 62% of the 180 viewers who loved Heat") and each
title's rating and popularity. What the session asked for (`Satisfied`, `SharedGenres`) is filled in by the agent
(agent/evidence.py), which knows the conversation.

Co-occurrence is computed from two sparse user × item matrices built once per log: "loved" (rated at least
`LOVED_FRACTION` of the way up the rating scale, 4 of 5 on MovieLens; every interaction when the log has no
ratings) and "watched" (any interaction). A turn multiplies only the columns of its few source titles and picks,
so its cost does not grow with the catalog.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from retrieval.catalog.schema import Catalog, Interactions

# "more like X" / a title the user liked / a known user's log / (item descriptions) a title the pick's audience loved
Relation = Literal["anchor", "liked", "history", "audience"]
RELATION_ORDER: dict[str, int] = {"anchor": 0, "liked": 1, "history": 2, "audience": 3}
PERSONAL_RELATIONS = ("anchor", "liked", "history")  # connections to titles the user named or loved
LOVED_FRACTION = 0.75  # of the way from the lowest to the highest rating: 4 on a 1–5 scale
MIN_FANS = 20  # a connection needs this many fans of the source title ...
MIN_OVERLAP = 5  # ... and this many of them who also loved the pick, so "100% of 2 viewers" never appears
WILSON_Z = 1.96  # connections are ranked by the 95% lower bound of their share, which discounts small counts
NOTABLE_RATINGS = 30  # a mean over fewer ratings is not quoted as a strength of the pick
TOP_DECILE = 10  # "among the best rated" / "one of the most watched" needs the top 10% of the catalog
AUDIENCE_MIN_LIFT = 1.5  # a description names a title the pick's audience loved only when it is this characteristic


class Connection(BaseModel):
    """The pick's link to a title the user cares about, measured on the interaction log."""

    item_id: str  # the connected title (liked, anchor or history item)
    title: str  # its catalog label, "Heat (1995)"
    relation: Relation
    measure: Literal["loved", "watched"]  # what `fans` and `also` count: rated highly, or any interaction
    fans: int  # users who loved (watched) the connected title
    also: int  # of them, users who also loved (watched) the pick
    percent: int  # round(100 * also / fans)
    lift: float  # the share among fans / the share among all users, one decimal ("3.2 times as likely")
    strength: float  # Wilson lower bound of also / fans: the ranking key (not meant for people)


class SharedGenres(BaseModel):
    """Genres the pick shares with an anchor or liked title."""

    item_id: str
    title: str
    genres: list[str]


class Satisfied(BaseModel):
    """What the pick meets of the request (filled in by agent/evidence.py)."""

    genres: list[str] = Field(default_factory=list)  # asked-for genres the pick has
    asked_genres: int = 0  # how many genres were asked for
    all_genres: bool = False  # it has every asked-for genre (two or more asked)
    year_min: int | None = None  # the asked year range it falls in
    year_max: int | None = None
    moods: list[str] = Field(default_factory=list)  # the mood words of the request ...
    mood_genres: list[str] = Field(default_factory=list)  # ... and the pick's genres that fit them
    audience_genres: list[str] = Field(default_factory=list)  # "for the family": the pick's matching genres
    avoided_genres: list[str] = Field(default_factory=list)  # excluded genres (the pick has none of them)

    @property
    def years(self) -> bool:
        return self.year_min is not None or self.year_max is not None


class CatalogStats(BaseModel):
    """The pick's standing in the catalog, from the interaction log."""

    rating_mean: float | None = None  # one decimal; None when the log has no ratings
    rating_count: int = 0
    rating_scale: int | None = None  # the highest rating of the log ("4.2 out of 5")
    viewers: int = 0  # users who interacted with it
    popularity_rank: int = 0  # 1 = most interacted-with title (ties share a rank)
    catalog_size: int = 0
    top_percent: int = 100  # ceil(100 * rank / catalog size): "among the top 2%"
    # the mean rating's standing among titles with at least NOTABLE_RATINGS ratings: ceil(100 * rank / their
    # number); None below that many ratings (or without ratings)
    rating_top_percent: int | None = None

    @property
    def notable_rating(self) -> bool:
        return self.rating_mean is not None and self.rating_count >= NOTABLE_RATINGS

    @property
    def top_rated(self) -> bool:
        """Among the best-rated tenth of the catalog: the only standing that licenses praise ("acclaimed")."""
        return self.rating_top_percent is not None and self.rating_top_percent <= TOP_DECILE

    @property
    def most_watched(self) -> bool:
        """Among the most-watched tenth of the catalog: licenses "popular", "widely seen"."""
        return self.viewers > 0 and self.top_percent <= TOP_DECILE


class Signal(BaseModel):
    """One retrieval signal that ranked the pick (Candidate.sources: generator name -> its score)."""

    name: str
    score: float


class Evidence(BaseModel):
    """Everything a sentence about the pick may cite besides its own catalog facts (title, year, genres)."""

    item_id: str
    connections: list[Connection] = Field(default_factory=list)  # strongest first, at most two
    shared_genres: list[SharedGenres] = Field(default_factory=list)
    satisfies: Satisfied = Field(default_factory=Satisfied)
    catalog: CatalogStats | None = None
    signals: list[Signal] = Field(default_factory=list)  # strongest first

    def titles(self) -> list[tuple[str, str]]:
        """(item_id, label) of every other title the evidence names."""
        seen = dict.fromkeys((c.item_id, c.title) for c in self.connections)
        seen.update(dict.fromkeys((s.item_id, s.title) for s in self.shared_genres))
        return list(seen)

    def numbers(self) -> set[str]:
        """Every number a sentence about the pick may state (as written, without thousands separators)."""
        values: list[float | int | None] = []
        for c in self.connections:
            values += [c.fans, c.also, c.percent, c.lift]
        s = self.satisfies
        values += [s.year_min, s.year_max]
        if self.catalog is not None:
            k = self.catalog
            values += [k.rating_mean, k.rating_count, k.rating_scale, k.viewers, k.popularity_rank,
                       k.catalog_size, k.top_percent, k.rating_top_percent]
        return {_number_text(v) for v in values if v is not None}

    def percents(self) -> set[str]:
        """The numbers a sentence may state as a percentage ("67%", "the top 2%")."""
        values: list[int | None] = [c.percent for c in self.connections]
        if self.catalog is not None:
            values += [self.catalog.top_percent, self.catalog.rating_top_percent]
        return {_number_text(v) for v in values if v is not None}

    def pairs(self) -> set[tuple[str, str]]:
        """(a, b) pairs a sentence may state as "a of b" / "a out of b" / "a/b": a connection's (also, fans), the
        popularity (rank, catalog size), the rating (mean, scale)."""
        pairs = {(_number_text(c.also), _number_text(c.fans)) for c in self.connections}
        k = self.catalog
        if k is not None:
            pairs.add((_number_text(k.popularity_rank), _number_text(k.catalog_size)))
            if k.rating_mean is not None and k.rating_scale:
                pairs.add((_number_text(k.rating_mean), _number_text(k.rating_scale)))
        return pairs

    def personal(self) -> bool:
        """Whether it holds something personal to the user or the request (what "cites personal evidence" can
        mean for this pick): a connection to a title the user named or loved, genres shared with one, or something
        it meets of the request."""
        s = self.satisfies
        return (any(c.relation in PERSONAL_RELATIONS for c in self.connections) or bool(self.shared_genres)
                or bool(s.genres or s.years or s.mood_genres or s.audience_genres or s.avoided_genres))


def _number_text(value: float | int) -> str:
    """A number as a claim check compares it: "4" for 4, 4.0 and "4.0"; "3.2" for 3.2."""
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:g}"


# a number standing alone (Chinese characters around it do not join it to a word: "排第1，共1,682部")
NUMBER = re.compile(r"(?<![A-Za-z0-9_.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?![A-Za-z0-9_])")


def numbers_in(text: str) -> set[str]:
    """The numbers a text states, as `Evidence.numbers` writes them ("1,682" -> "1682", "62%" -> "62",
    "4.0" -> "4")."""
    return {_number_text(float(m.group(1).replace(",", ""))) for m in NUMBER.finditer(text)}


def wilson_lower_bound(successes, trials, z: float = WILSON_Z):
    """The lower end of the Wilson score interval of successes / trials (numbers or numpy arrays; trials > 0)."""
    successes, trials = np.asarray(successes, dtype=np.float64), np.asarray(trials, dtype=np.float64)
    p = successes / trials
    centre = p + z * z / (2 * trials)
    margin = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return (centre - margin) / (1 + z * z / trials)


class LogEvidence:
    """Statistics of one catalog + interaction log, built once (a service holds one; a turn only queries it)."""

    def __init__(self, catalog: Catalog, interactions: Interactions):
        self.catalog = catalog
        self.user_ids = interactions.user_ids
        self._user_row = {u: i for i, u in enumerate(interactions.user_ids)}
        n_users, n_items = interactions.n_users, len(catalog)
        ratings = np.asarray(interactions.ratings, dtype=np.float64)
        self.rated = bool(len(ratings)) and float(ratings.min()) != float(ratings.max())
        watched = interactions.to_csr(n_items)
        if self.rated:
            low, high = float(ratings.min()), float(ratings.max())
            keep = ratings >= low + LOVED_FRACTION * (high - low)
            loved = interactions.to_csr(n_items, rows=np.flatnonzero(keep))
            self.scale: int | None = int(round(high))
            sums = np.bincount(interactions.items, weights=ratings, minlength=n_items)
            counts = np.bincount(interactions.items, minlength=n_items)
            self.rating_count = counts
            self.rating_mean = np.divide(sums, counts, out=np.zeros(n_items), where=counts > 0)
        else:
            loved = watched
            self.scale = None
            self.rating_count = np.zeros(n_items, dtype=np.int64)
            self.rating_mean = np.zeros(n_items)
        self.measure: Literal["loved", "watched"] = "loved" if self.rated else "watched"
        self.loved_csc = loved.tocsc()  # columns: the fans of an item
        self.loved_csr = loved.tocsr()  # rows: the titles a user loved
        self.fans = np.asarray(loved.sum(axis=0)).ravel().astype(np.int64)
        self.viewers = np.asarray(watched.sum(axis=0)).ravel().astype(np.int64)
        self.n_users = max(n_users, 1)
        # competition ranking ("1224"): an item's rank is 1 + the number of items with more viewers
        order = np.sort(self.viewers)[::-1]
        self.rank = 1 + np.searchsorted(-order, -self.viewers, side="left")
        # the same competition ranking of mean ratings, among the titles with enough ratings to compare
        rated_enough = self.rating_count >= NOTABLE_RATINGS
        means = np.round(self.rating_mean[rated_enough], 1)
        self.rated_titles = int(rated_enough.sum())
        self.rating_rank = np.zeros(n_items, dtype=np.int64)
        if self.rated and self.rated_titles:
            by_mean = np.sort(means)[::-1]
            self.rating_rank[rated_enough] = 1 + np.searchsorted(-by_mean, -means, side="left")

    # --- catalog standing --------------------------------------------------------------------------
    def stats(self, index: int) -> CatalogStats:
        n = len(self.catalog)
        rank = int(self.rank[index])
        count = int(self.rating_count[index])
        rating_rank = int(self.rating_rank[index])
        return CatalogStats(rating_mean=round(float(self.rating_mean[index]), 1) if self.rated and count else None,
                            rating_count=count, rating_scale=self.scale if self.rated else None,
                            viewers=int(self.viewers[index]), popularity_rank=rank, catalog_size=n,
                            top_percent=max(1, math.ceil(100 * rank / n)),
                            rating_top_percent=max(1, math.ceil(100 * rating_rank / self.rated_titles))
                            if rating_rank else None)

    def audience(self, index: int, limit: int = 2) -> list[Connection]:
        """Titles the pick's audience loved (for an item description: "loved by 40% of the 120 viewers who
        loved Fargo"): the pick's strongest connections from every title with enough fans, kept only when the
        share is at least AUDIENCE_MIN_LIFT times the pick's base rate (so not every title names Star Wars)."""
        sources = [(int(i), "audience") for i in np.flatnonzero(self.fans >= MIN_FANS) if i != index]
        found = self.connections([index], sources, limit=len(sources))[0]
        return [c for c in found if c.lift >= AUDIENCE_MIN_LIFT][:limit]

    # --- connections -------------------------------------------------------------------------------
    def loved_by(self, user_id: str | None) -> tuple[int, ...]:
        """Catalog indices a user of the log loved (watched, for a log without ratings); () for a stranger."""
        row = self._user_row.get(user_id) if user_id is not None else None
        if row is None:
            return ()
        start, end = self.loved_csr.indptr[row], self.loved_csr.indptr[row + 1]
        return tuple(int(i) for i in self.loved_csr.indices[start:end])

    def connections(self, picks: Sequence[int], sources: Sequence[tuple[int, Relation]],
                    limit: int = 5) -> list[list[Connection]]:
        """Per pick, its `limit` best connections to source titles with enough support: anchors first, then liked
        titles, then history, each by the lower bound of the share (vectorised: a known user's history may hold
        hundreds of titles)."""
        sources = [(s, rel) for s, rel in dict.fromkeys(sources) if self.fans[s] >= MIN_FANS]
        if not len(picks) or not sources:
            return [[] for _ in picks]
        src = np.asarray([s for s, _ in sources])
        order = np.asarray([RELATION_ORDER[rel] for _, rel in sources])
        fans = self.fans[src].astype(np.float64)
        both = (self.loved_csc[:, src].T @ self.loved_csc[:, np.asarray(picks)]).toarray()  # sources × picks
        out: list[list[Connection]] = []
        for j, pick in enumerate(picks):
            also = both[:, j]
            ok = np.flatnonzero((also >= MIN_OVERLAP) & (src != pick))
            strength = wilson_lower_bound(also[ok], fans[ok])
            ranked = ok[np.lexsort((-strength, order[ok]))]
            base = self.fans[pick] / self.n_users
            found = []
            # a catalog may list one film twice (MovieLens-100k: 18 titles under two ids); a second entry of a
            # title already named, or of the pick itself, would read as the same film with other figures
            labels = {self.catalog.at(pick).label}
            for i in ranked:
                source, relation = sources[i]
                item = self.catalog.at(source)
                if item.label in labels:
                    continue
                if len(found) == limit:
                    break
                labels.add(item.label)
                share = also[i] / fans[i]
                found.append(Connection(item_id=item.item_id, title=item.label, relation=relation,
                                        measure=self.measure, fans=int(fans[i]), also=int(also[i]),
                                        percent=round(100 * share), lift=round(share / base, 1) if base else 0.0,
                                        strength=round(float(wilson_lower_bound(also[i], fans[i])), 4)))
            out.append(found)
        return out


def signals_of(sources: Iterable[tuple[str, float]]) -> list[Signal]:
    """The retrieval signals of a candidate, strongest first (names are read as given: no generator is assumed)."""
    return [Signal(name=str(name), score=round(float(score), 6))
            for name, score in sorted(sources, key=lambda kv: -float(kv[1]))]
