"""Typed result of understanding one message: a `Preferences` delta that the session state absorbs."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from agent.locale import Locale

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

    def summary(self, locale: Locale | None = None) -> str:
        """A short "what I understood" line in the locale's language ("" when nothing was understood)."""
        loc = locale or Locale("en")
        say = lambda key, **fields: loc.text("summary", key, **fields)  # noqa: E731
        parts: list[str] = []
        if self.reset:
            parts.append(say("reset"))
        if self.user_id:
            parts.append(say("user", user=self.user_id))
        if self.genres:
            joined = loc.genres(self.genres, say({"all": "all_genres", "blend": "blend_genres"}.get(self.genre_mode,
                                                                                                   "any_genres")))
            parts.append(say("additive", genres=joined) if self.additive else joined)
        if self.audience_genres:
            parts.append(say("audience", genres=loc.genres(self.audience_genres, say("audience_separator"))))
        if self.exclude_genres:
            parts.append(say("exclude", genres=loc.genres(self.exclude_genres)))
        if self.drop_genres:
            parts.append(say("drop", genres=loc.genres(self.drop_genres)))
        years = loc.years(self.year_min, self.year_max)
        if years:
            parts.append(years)
        if self.era:
            parts.append(say(self.era))
        if self.moods:
            parts.append(say("moods", moods=say("list_separator").join(self.moods)))
        for relation in ("anchor", "like", "dislike", "seen"):
            refs = self.titles_by(relation)
            if refs:
                parts.append(say(relation, titles=loc.titles([(t.item_id, t.title) for t in refs])))
        for ref in self.ordinals:
            which = say("that_one") if ref.position is None else (
                say("last_one") if ref.position == -1 else say("pick_number", n=ref.position))
            parts.append(say(f"ordinal_{ref.relation}", which=which))
        if self.count:
            parts.append(say("count", n=self.count))
        if self.anything and not parts:
            parts.append(say("anything"))
        if self.query:
            parts.append(say("query", query=self.query))
        return say("separator").join(parts)


def describe_years(year_min: int | None, year_max: int | None) -> str:
    """The year window in English ("from the 1990s", "1985–1992"); other languages: `Locale.years`."""
    return Locale("en").years(year_min, year_max)
