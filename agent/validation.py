"""One validation layer for the agent's inputs, shared by every interface (docs/ARCHITECTURE.md §3).

`RecommenderAgent` validates each call with these models before it touches a session, so a rejected call
changes nothing; the web API and the CLI use the same types for their own arguments. Each interface maps
the one `InputError` to its own form: the exception itself in Python, `gr.Error` over HTTP, exit code 2
and one line on the command line.

Rules (strict: no bool for a number, no float for a whole number, no "1990" for 1990):
- text (messages, item ids) is a `str`; lone surrogates (undecodable bytes, bad JSON escapes) become
  U+FFFD; a message longer than `MAX_MESSAGE_CHARS` is refused (the parser reads the first 2,000);
- session and user ids: 1-128 letters, digits or `. : @ _ -` (safe in URLs, logs and SQL keys);
- years: whole numbers within the plausible range of the catalog (`year_bounds`: from 50 years before
  its oldest item to 5 years after this year), counts 1..`[agent] max_count`;
- genres: a list of known genre names (any case), never a bare string.
"""
from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr,
                      ValidationError, ValidationInfo, field_validator, model_validator)
from pydantic_core import PydanticCustomError

MAX_MESSAGE_CHARS = 20_000  # longer messages are refused, at every interface (HTTP bodies are capped too)
MAX_ID_CHARS = 128
MAX_ITEM_ID_CHARS = 256
MAX_GENRES = 50
ID_RULE = "use 1-128 letters, digits or . : @ _ -"
_ID = re.compile(rf"[\w.:@-]{{1,{MAX_ID_CHARS}}}")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
FeedbackAction = Literal["like", "dislike", "seen"]
ACTIONS: dict[str, dict[str, bool | None]] = {"like": {"liked": True, "seen": False},
                                              "dislike": {"liked": False, "seen": False},
                                              "seen": {"liked": None, "seen": True}}


class InputError(ValueError):
    """Input the caller can fix; the message names the field, what is wrong and what is allowed."""


def clean_text(text: str) -> str:
    """Lone surrogates (bytes that were not UTF-8, or a broken JSON escape) → U+FFFD, so the text can be
    stored, logged, tokenised and sent back as JSON."""
    return _SURROGATE.sub("\ufffd", text)


def _check_id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise PydanticCustomError("marquee_id", ID_RULE)
    return value


def _check_message(text: str) -> str:
    if len(text) > MAX_MESSAGE_CHARS:
        raise PydanticCustomError("marquee_too_long", "too long: {length} characters, at most {limit}",
                                  {"length": len(text), "limit": MAX_MESSAGE_CHARS})
    return text


def _clean(value: Any) -> Any:
    # before pydantic's own checks: it cannot even measure a str with lone surrogates
    return clean_text(value) if isinstance(value, str) else value


Clean = BeforeValidator(_clean)
Message = Annotated[StrictStr, Clean, AfterValidator(_check_message)]
Identifier = Annotated[StrictStr, Clean, AfterValidator(_check_id)]
ItemId = Annotated[StrictStr, Clean, Field(min_length=1, max_length=MAX_ITEM_ID_CHARS)]
GenreName = Annotated[StrictStr, Clean, Field(max_length=64)]


def year_bounds(years: Iterable[int | None], today: datetime.date | None = None) -> tuple[int, int]:
    """The years a request may name: 50 years before the catalog's oldest item to 5 years after this year
    (a catalog without years: 1850 .. this year + 5)."""
    now = (today or datetime.date.today()).year
    known = [y for y in years if y]
    return max(1, (min(known) if known else 1900) - 50), max(max(known) if known else now, now) + 5


@dataclass(frozen=True)
class Limits:
    """What the catalog and the configuration allow; the validation context of every request."""

    years: tuple[int, int] = (1, 9999)
    max_count: int = 20
    resolve_genres: Callable[[Iterable[str]], Iterable[str]] | None = None  # catalog spelling, ValueError if unknown

    def context(self) -> dict[str, Any]:
        return {"limits": self}


def _limits(info: ValidationInfo) -> Limits:
    return (info.context or {}).get("limits") or Limits()


class Request(BaseModel):
    """Strict, immutable, no unknown fields."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class ChatRequest(Request):
    message: Message
    session_id: Identifier
    user_id: Identifier | None = None
    account: Identifier | None = None  # the signed-in user (`serve --auth`): owner of the stored profile


class SessionRequest(Request):
    session_id: Identifier
    user_id: Identifier | None = None  # who the session belongs to (the CLI's --user)


class FeedbackRequest(Request):
    session_id: Identifier
    item_id: ItemId
    liked: StrictBool | None = True
    seen: StrictBool = False
    account: Identifier | None = None  # the signed-in user (`serve --auth`): owner of the stored profile

    @model_validator(mode="after")
    def _says_something(self) -> "FeedbackRequest":
        if self.liked is None and not self.seen:
            raise PydanticCustomError("marquee_feedback", "feedback needs liked=True/False or seen=True")
        return self

    @classmethod
    def for_action(cls, session_id: Any, item_id: Any, action: Any, context: Mapping | None = None,
                   account: Any = None) -> "FeedbackRequest":
        """The web page's and the CLI's form: action "like" | "dislike" | "seen"."""
        if not isinstance(action, str) or action not in ACTIONS:
            raise InputError(f"invalid action: unknown feedback action {_shown(action)}; "
                             f"use one of: {', '.join(ACTIONS)}")
        return validate(cls, {"session_id": session_id, "item_id": item_id, **ACTIONS[action], "account": account},
                        context)

    def kinds(self) -> list[FeedbackAction]:
        return (["seen"] if self.seen else []) + ([] if self.liked is None else ["like" if self.liked else "dislike"])


class PreferencesUpdate(Request):
    """Edits of a session's preferences. Only the fields given change; None clears years, count and user
    (and empties the genre lists)."""

    session_id: Identifier
    genres: list[GenreName] | None = Field(None, max_length=MAX_GENRES)
    exclude_genres: list[GenreName] | None = Field(None, max_length=MAX_GENRES)
    year_min: StrictInt | None = None
    year_max: StrictInt | None = None
    count: StrictInt | None = None
    user_id: Identifier | None = None

    @field_validator("genres", "exclude_genres")
    @classmethod
    def _known_genres(cls, names: list[str] | None, info: ValidationInfo) -> list[str] | None:
        resolve = _limits(info).resolve_genres
        if names is None or resolve is None:
            return names
        try:
            return sorted(resolve(names))
        except ValueError as err:  # the resolver's message lists the valid genres
            raise PydanticCustomError("marquee_genre", "{reason}", {"reason": str(err)}) from None

    @field_validator("year_min", "year_max")
    @classmethod
    def _plausible_year(cls, year: int | None, info: ValidationInfo) -> int | None:
        lo, hi = _limits(info).years
        if year is not None and not lo <= year <= hi:
            raise PydanticCustomError("marquee_range", "must be a whole number between {lo} and {hi}",
                                      {"lo": lo, "hi": hi})
        return year

    @field_validator("count")
    @classmethod
    def _count_in_range(cls, count: int | None, info: ValidationInfo) -> int | None:
        top = _limits(info).max_count
        if count is not None and not 1 <= count <= top:
            raise PydanticCustomError("marquee_range", "must be a whole number between {lo} and {hi}",
                                      {"lo": 1, "hi": top})
        return count

    @model_validator(mode="after")
    def _consistent(self) -> "PreferencesUpdate":
        if self.year_min is not None and self.year_max is not None and self.year_min > self.year_max:
            raise PydanticCustomError("marquee_years", "year_min {lo} is after year_max {hi}",
                                      {"lo": self.year_min, "hi": self.year_max})
        both = set(self.genres or ()) & set(self.exclude_genres or ())
        if both:
            raise PydanticCustomError("marquee_genres", "a genre cannot be both wanted and excluded: {names}",
                                      {"names": ", ".join(sorted(both))})
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the caller gave (session_id aside)."""
        return {name: getattr(self, name) for name in self.model_fields_set if name != "session_id"}


# ------------------------------------------------------------------------------------------- errors
M = TypeVar("M", bound=BaseModel)

_PHRASES = {  # pydantic error type → what a person should change
    "string_type": "must be text",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "int_parsing": "must be a whole number",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "missing": "is required",
    "extra_forbidden": "is not a field here",
    "finite_number": "must be a finite number",
    "literal_error": "must be one of: {expected}",
}


def validate(model: type[M], data: Any, context: Mapping | None = None) -> M:
    """`model.model_validate(data)` with a person-readable `InputError` instead of a ValidationError."""
    try:
        return model.model_validate(data, context=dict(context or {}))
    except ValidationError as err:
        raise InputError(describe(err)) from None


def describe(err: ValidationError) -> str:
    """One clause per problem: "invalid FIELD: what is wrong, got VALUE" (or the rule broken by the whole
    request, e.g. "year_min 2000 is after year_max 1990")."""
    lines = []
    for problem in err.errors(include_url=False):
        kind, loc = problem["type"], problem["loc"]
        text = _PHRASES.get(kind, problem["msg"])
        if kind == "literal_error":
            text = text.format(expected=problem.get("ctx", {}).get("expected", "").replace("'", ""))
        elif kind == "value_error":
            text = str(problem.get("ctx", {}).get("error", text))
        elif kind == "list_type" and loc and loc[0] in ("genres", "exclude_genres"):
            text = 'must be a list of genre names, e.g. ["Comedy"]'
        if not loc:  # a rule about the whole request
            lines.append(text)
            continue
        where = ".".join(str(part) for part in loc)
        if kind == "extra_forbidden":
            lines.append(f"unknown field {where!r}")
            continue
        quiet = kind in ("missing", "marquee_genre", "marquee_too_long")
        lines.append(f"invalid {where}: {text}" + ("" if quiet else f", got {_shown(problem.get('input'))}"))
    return "; ".join(lines)


def _shown(value: Any, limit: int = 40) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int with more digits than Python will print
        return "a number too long to show"
    return text if len(text) <= limit else text[: limit - 1] + "…"
