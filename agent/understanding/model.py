"""Typed result of understanding one message: a `Preferences` delta that the session state absorbs."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

# like: "I loved X"; anchor: "more like X" (liked, and the reference point of this request);
# dislike: "not X", "X was awful"; seen: "I've seen X" (neither liked nor disliked, just not new).
Relation = Literal["like", "anchor", "dislike", "seen"]
# any: each pick has one of the genres ("comedy or drama"); all: each pick has every one ("romantic
# comedy"); blend: each pick has one, and at least half have two or more when the catalog allows
# ("sci-fi and action films"; the list-level half is enforced by agent.planner.select_picks).
GenreMode = Literal["any", "all", "blend"]


class TitleRef(BaseModel):
    """A catalog title the user mentioned, resolved to its id by fuzzy matching."""

    item_id: str
    title: str
    mention: str  # the words the user wrote
    relation: Relation
    score: float


class OrdinalRef(BaseModel):
    """"the second one", "that one": a reference to the items shown last turn (1-based; -1 = last)."""

    position: int | None  # None = "that one" (the item in focus)
    relation: Relation


class Preferences(BaseModel):
    """What one message says. Empty fields mean "not mentioned", so deltas compose across turns."""

    genres: list[str] = Field(default_factory=list)  # catalog genre names wanted
    genre_mode: GenreMode = "any"
    exclude_genres: list[str] = Field(default_factory=list)
    drop_genres: list[str] = Field(default_factory=list)  # "forget westerns": no longer wanted (not excluded)
    # "for the whole family": any of these alone; the first one narrows a wanted genre ("a family comedy")
    audience_genres: list[str] = Field(default_factory=list)
    additive: bool = False  # "also comedies": add to the wanted genres instead of replacing them
    year_min: int | None = None
    year_max: int | None = None
    era: Literal["older", "newer"] | None = None  # relative to the items shown last
    count: int | None = None
    moods: list[str] = Field(default_factory=list)
    mood_genres: list[str] = Field(default_factory=list)  # soft priors from mood words
    titles: list[TitleRef] = Field(default_factory=list)
    ordinals: list[OrdinalRef] = Field(default_factory=list)
    unknown_titles: list[str] = Field(default_factory=list)  # mentions that matched nothing in the catalog
    query: str = ""  # free-text remainder for semantic search
    user_id: str | None = None  # "I am user 196"
    reset: bool = False
    anything: bool = False  # "surprise me": popular picks are the answer asked for
    injection: bool = False  # the message tried to give the assistant new instructions
    language: Literal["en", "zh"] = "en"  # the message's language, for the reply

    def titles_by(self, relation: Relation) -> list[TitleRef]:
        return [t for t in self.titles if t.relation == relation]

    def is_empty(self) -> bool:
        return not (self.genres or self.exclude_genres or self.drop_genres or self.audience_genres or self.year_min
                    or self.year_max or self.era or self.count or self.moods or self.titles or self.ordinals
                    or self.query or self.user_id or self.reset or self.anything)

    def summary(self) -> str:
        """A short "what I understood" line for the reply (empty when nothing was understood)."""
        parts: list[str] = []
        if self.reset:
            parts.append("start over")
        if self.user_id:
            parts.append(f"you are user {self.user_id}")
        if self.genres:
            joined = {"all": " + ".join, "blend": " and ".join}.get(self.genre_mode, " or ".join)(self.genres)
            parts.append(("also " if self.additive else "") + joined)
        if self.audience_genres:
            parts.append("for the whole family (" + " or ".join(self.audience_genres) + ")")
        if self.exclude_genres:
            parts.append("no " + ", ".join(self.exclude_genres))
        if self.drop_genres:
            parts.append("no longer " + ", ".join(self.drop_genres))
        years = describe_years(self.year_min, self.year_max)
        if years:
            parts.append(years)
        if self.era:
            parts.append(f"{self.era} than the last picks")
        if self.moods:
            parts.append("mood: " + ", ".join(self.moods))
        for relation, verb in (("anchor", "more like"), ("like", "you like"), ("dislike", "you don't want"),
                               ("seen", "you have seen")):
            names = [t.title for t in self.titles_by(relation)]
            if names:
                parts.append(f"{verb} " + ", ".join(names))
        for ref in self.ordinals:
            which = "that one" if ref.position is None else ("the last one" if ref.position == -1
                                                              else f"pick #{ref.position}")
            parts.append({"like": f"you like {which}", "anchor": f"more like {which}", "dislike": f"not {which}",
                          "seen": f"you have seen {which}"}[ref.relation])
        if self.count:
            parts.append(f"{self.count} picks")
        if self.anything and not parts:
            parts.append("anything you might enjoy")
        if self.query:
            parts.append(f'about "{self.query}"')
        return "; ".join(parts)


def describe_years(year_min: int | None, year_max: int | None) -> str:
    if year_min is None and year_max is None:
        return ""
    if year_min is not None and year_max is not None:
        if year_min == year_max:
            return f"from {year_min}"
        if year_min % 10 == 0 and year_max == year_min + 9:
            return f"from the {year_min}s"
        return f"{year_min}–{year_max}"
    return f"from {year_min} on" if year_min is not None else f"up to {year_max}"
