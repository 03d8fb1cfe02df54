"""Multi-turn session state: each message's `Preferences` delta accumulates into `SessionState`.

Rules (why: a refinement should keep everything said before unless it contradicts it):
- wanted genres (with their mode: any / all / blend) are replaced by a new positive genre statement, unless
  it is additive ("also comedies"); "forget westerns" drops a genre without excluding it; excluding a
  genre removes it from the wanted ones and vice versa (the latest word wins);
- an audience ("for the whole family") stays until reset: alone it wants Children's or Animation, with
  wanted genres it narrows them to Children's titles (see [audiences] in agent/understanding/lexicon.toml);
- an explicit year window replaces the old one; "older" / "newer" move it relative to the last shown items;
- liked / disliked / seen titles and exclusions accumulate until reset; the anchors ("more like X") of the
  latest message that named some are the reference of the request (they are liked too);
- every item shown and not liked counts as rejected and is not shown again (unless nothing else is left).
"""
from __future__ import annotations

import statistics
from typing import Literal

from pydantic import BaseModel, Field

from agent.locale import Note
from agent.understanding import Preferences, TitleRef
from agent.understanding.model import GenreMode
from retrieval.catalog.schema import Catalog
from retrieval.constraints import Constraints

FeedbackKind = Literal["like", "anchor", "dislike", "seen"]


class SessionState(BaseModel):
    session_id: str
    # Whose history personalises the picks: a catalog user named in the conversation ("I am user 196") or by
    # the caller. A claim in a message is trusted for this session only; it never opens a stored profile.
    user_id: str | None = None
    # Who owns the stored profile (feedback across sessions): only the caller sets it, never a message
    # (the signed-in user of `marquee serve --auth`, `--user` of the CLI, `user_id=` of the Python API).
    account: str | None = None
    genres: list[str] = Field(default_factory=list)
    genre_mode: GenreMode = "any"
    exclude_genres: list[str] = Field(default_factory=list)
    audience_genres: list[str] = Field(default_factory=list)  # first = the genre that narrows wanted ones
    year_min: int | None = None
    year_max: int | None = None
    count: int | None = None
    moods: list[str] = Field(default_factory=list)
    mood_genres: list[str] = Field(default_factory=list)
    query: str = ""
    liked: list[str] = Field(default_factory=list)  # item ids
    anchors: list[str] = Field(default_factory=list)  # "more like X" of the latest message naming some (also liked)
    disliked: list[str] = Field(default_factory=list)
    seen: list[str] = Field(default_factory=list)
    shown: list[str] = Field(default_factory=list)  # every item shown in this session, oldest first
    last_shown: list[str] = Field(default_factory=list)  # the latest list, for "the second one"
    focus: str | None = None  # the item "that one" refers to
    turns: int = 0

    # ------------------------------------------------------------------ updates
    def reset(self) -> None:
        """Forget everything said in this session (who the user is stays known)."""
        fresh = SessionState(session_id=self.session_id, user_id=self.user_id, account=self.account)
        for name in type(self).model_fields:
            setattr(self, name, getattr(fresh, name))

    def apply(self, delta: Preferences, catalog: Catalog, needed: int = 5) -> list[Note]:
        """Absorb one message's preferences; returns notes for the reply (e.g. an unresolvable "that one")."""
        notes: list[Note] = []
        if delta.reset:
            self.reset()
        if delta.user_id:
            self.user_id = delta.user_id
        if delta.genres:
            if delta.additive:
                self.genres, self.genre_mode = _union(self.genres, delta.genres), "any"
            else:
                self.genres, self.genre_mode = list(delta.genres), delta.genre_mode
                if not delta.query:
                    self.query = ""
        if delta.drop_genres:  # "forget westerns": no longer wanted, and no longer excluded either
            self.genres = [g for g in self.genres if g not in delta.drop_genres]
            self.exclude_genres = [g for g in self.exclude_genres if g not in delta.drop_genres]
        if delta.exclude_genres:
            self.exclude_genres = _union(self.exclude_genres, delta.exclude_genres)
        self.exclude_genres = [g for g in self.exclude_genres if g not in delta.genres]
        self.genres = [g for g in self.genres if g not in self.exclude_genres]
        if len(self.genres) < 2:
            self.genre_mode = "any"
        if delta.audience_genres:
            self.audience_genres = list(delta.audience_genres)
        if delta.year_min is not None or delta.year_max is not None:
            self.year_min, self.year_max = delta.year_min, delta.year_max
        if delta.era:
            self._shift_era(delta.era, catalog, needed)
        if delta.count:
            self.count = delta.count
        if delta.moods:
            self.moods, self.mood_genres = list(delta.moods), list(delta.mood_genres)
        if delta.query:
            self.query = delta.query
        if any(ref.relation == "anchor" for ref in [*delta.titles, *delta.ordinals]):
            self.anchors = []
        for ref in delta.titles:
            self.mark(ref.item_id, ref.relation)
        for ordinal in delta.ordinals:
            item_id = self._resolve_ordinal(ordinal.position)
            if item_id is None or item_id not in catalog:
                notes.append(Note("ordinal_unknown"))
                continue
            self.mark(item_id, ordinal.relation)
            self.focus = item_id
            # from now on the reference reads like a named title ("you like Aliens (1986)")
            delta.titles.append(TitleRef(item_id=item_id, title=catalog[item_id].label, relation=ordinal.relation,
                                         mention=_ordinal_words(ordinal.position), score=100.0))
        delta.ordinals = []
        return notes

    def mark(self, item_id: str, relation: FeedbackKind) -> None:
        """Record like / dislike / seen for an item (the latest opinion wins between like and dislike)."""
        if relation in ("like", "anchor"):
            self.liked = _union(self.liked, [item_id])
            self.disliked = [i for i in self.disliked if i != item_id]
            if relation == "anchor":
                self.anchors = _union(self.anchors, [item_id])
        elif relation == "dislike":
            self.disliked = _union(self.disliked, [item_id])
            self.liked = [i for i in self.liked if i != item_id]
            self.anchors = [i for i in self.anchors if i != item_id]
        else:
            self.seen = _union(self.seen, [item_id])

    def record_shown(self, item_ids: list[str]) -> None:
        self.last_shown = list(item_ids)
        self.shown = _union(self.shown, item_ids)
        self.focus = item_ids[0] if item_ids else None
        self.turns += 1

    # ------------------------------------------------------------------ derived
    def has_preferences(self) -> bool:
        """Has the session been told anything to recommend from (so a vague message can follow it)?"""
        return bool(self.genres or self.exclude_genres or self.audience_genres or self.year_min is not None
                    or self.year_max is not None or self.moods or self.query or self.liked or self.disliked
                    or self.seen or self.user_id or self.count or self.shown)
    def constraints(self, exclude_shown: bool = True, extra_excluded: frozenset[str] = frozenset()) -> Constraints:
        """Hard constraints: stated genres / years, and never an item the user saw, disliked, already
        likes, or (by default) was shown before."""
        excluded = set(self.disliked) | set(self.seen) | set(self.liked) | set(self.anchors) | set(extra_excluded)
        if exclude_shown:
            excluded |= set(self.shown)
        genres, mode = self.wanted_genres()
        return Constraints(include_genres=frozenset(genres), exclude_genres=frozenset(self.exclude_genres),
                           genre_mode=mode, year_min=self.year_min, year_max=self.year_max,
                           exclude_ids=frozenset(excluded))

    def wanted_genres(self) -> tuple[list[str], str]:
        """The genre filter: the wanted genres in their mode ("blend" filters like "any"; the half with
        both genres is a list-level rule, agent.planner.select_picks), narrowed by the audience."""
        audience = [g for g in self.audience_genres if g not in self.exclude_genres]
        mode = "any" if self.genre_mode == "blend" else self.genre_mode
        if not audience:
            return list(self.genres), mode
        if not self.genres:
            return audience, "any"
        if len(self.genres) == 1 or mode == "all":
            return _union(self.genres, audience[:1]), "all"
        return list(self.genres), mode  # "comedy or drama for the kids": no single filter says both

    def _resolve_ordinal(self, position: int | None) -> str | None:
        if position is None:
            return self.focus or (self.last_shown[0] if self.last_shown else None)
        if not self.last_shown:
            return None
        if position == -1:
            return self.last_shown[-1]
        return self.last_shown[position - 1] if 1 <= position <= len(self.last_shown) else None

    def _shift_era(self, era: str, catalog: Catalog, needed: int) -> None:
        """"older": before the oldest item shown last (or before their median year when that leaves too
        few matching titles); "newer" mirrors it. Without shown items, relative to the catalog's median."""
        years = [catalog[i].year for i in self.last_shown if i in catalog and catalog[i].year]
        if not years:
            years = [it.year for it in catalog if it.year]
        anchors = ([min(years), int(statistics.median(years))] if era == "older"
                   else [max(years), int(statistics.median(years))])
        for anchor in anchors:
            lo, hi = (None, anchor - 1) if era == "older" else (anchor + 1, None)
            trial = self.model_copy(update={"year_min": lo, "year_max": hi})
            allowed = trial.constraints()
            if sum(1 for it in catalog if allowed.allows(it)) >= needed:
                break
        self.year_min, self.year_max = lo, hi


# How `merge` combines two concurrent edits of one session, field by field: sets merge their additions and
# removals; a counter adds both increments; fields that change together move together; anything else takes
# the newer writer's value where it changed it.
SET_FIELDS = ("genres", "exclude_genres", "liked", "disliked", "seen", "shown")
COUNTERS = ("turns",)
FIELD_GROUPS = (("year_min", "year_max"), ("moods", "mood_genres"))
OPPOSITES = (("liked", "disliked"), ("genres", "exclude_genres"))  # an item or genre is on one side only


def merge(base: SessionState, ours: SessionState, theirs: SessionState) -> SessionState:
    """Three-way merge: `ours` was computed from `base`, while another writer (a second replica, say) committed
    `theirs` over `base`. Nothing either side added or removed is lost; where both set the same field, ours wins
    (it commits last). Used by `RecommenderAgent` when the stored session moved on during a turn."""
    merged = theirs.model_copy(deep=True)
    grouped = {name: group for group in FIELD_GROUPS for name in group}
    for name in type(ours).model_fields:
        mine, before, other = getattr(ours, name), getattr(base, name), getattr(theirs, name)
        if name in SET_FIELDS:
            added = [x for x in mine if x not in before]
            removed = {x for x in before if x not in mine}
            setattr(merged, name, [x for x in other if x not in removed] + [x for x in added if x not in other])
        elif name in COUNTERS:
            setattr(merged, name, other + (mine - before))
        elif name in grouped:
            if any(getattr(ours, g) != getattr(base, g) for g in grouped[name]):
                setattr(merged, name, mine)
        elif mine != before:
            setattr(merged, name, mine)
    for side, opposite in OPPOSITES:
        both = set(getattr(merged, side)) & set(getattr(merged, opposite))
        for x in both:  # the latest opinion (ours) decides; the other side keeps its own
            loser = opposite if x in getattr(ours, side) else side
            setattr(merged, loser, [y for y in getattr(merged, loser) if y != x])
    merged.anchors = [x for x in merged.anchors if x in merged.liked]  # an anchor is a liked item
    return merged


def _ordinal_words(position: int | None) -> str:
    return "that one" if position is None else ("the last one" if position == -1 else f"pick #{position}")


def _union(a: list[str], b: list[str]) -> list[str]:
    return a + [x for x in b if x not in a]

