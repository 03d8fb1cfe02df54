"""Planning one turn's retrieval from the session state: the candidate request (query text, hard
constraints, collaborative signal) and a final guard that every pick is a real, allowed, new item.

Hard constraints are never relaxed. When too few items are left, the only thing given back is the
"not shown before" rule, and the reply says when even that is not enough.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agent.session import SessionState
from retrieval.candidates.base import Candidate, CandidateRequest
from retrieval.catalog.schema import Catalog
from retrieval.constraints import Constraints

Retrieve = Callable[[CandidateRequest, int], list[Candidate]]


@dataclass(frozen=True)
class Profile:
    """A user's opinions stored across sessions (feedback buttons, "I've seen X")."""

    liked: tuple[str, ...] = ()
    disliked: tuple[str, ...] = ()
    seen: tuple[str, ...] = ()

    @classmethod
    def of(cls, stored: dict | None) -> "Profile":
        stored = stored or {}
        return cls(tuple(stored.get("liked", ())), tuple(stored.get("disliked", ())), tuple(stored.get("seen", ())))


@dataclass
class Plan:
    request: CandidateRequest
    count: int
    pool: int
    relaxed_shown: bool = False  # items shown earlier were allowed again (nothing else was left)
    notes: list[str] = field(default_factory=list)


def query_text(state: SessionState, expansion: str = "") -> str:
    """Text for semantic search: the user's own words first, then genres and moods as soft hints."""
    parts = [expansion or state.query]
    if state.genres:
        parts.append(" ".join(state.genres))
    if state.mood_genres:
        parts.append(" ".join(g for g in state.mood_genres if g not in state.exclude_genres))
    text = " ".join(p for p in parts if p).strip()
    return f"{text} movies" if text else ""


def build_request(state: SessionState, profile: Profile, exclude_shown: bool, query: str = "",
                  known_user: bool = False) -> CandidateRequest:
    constraints = state.constraints(exclude_shown=exclude_shown,
                                    extra_excluded=frozenset(profile.disliked) | frozenset(profile.seen))
    liked = tuple(dict.fromkeys((*state.liked, *profile.liked)))
    disliked = tuple(dict.fromkeys((*state.disliked, *profile.disliked)))
    return CandidateRequest(query=query or query_text(state), constraints=constraints, liked=liked,
                            disliked=disliked, user_id=state.user_id if known_user else None)


def plan_and_retrieve(state: SessionState, profile: Profile, retrieve: Retrieve, count: int, pool: int,
                      exclude_shown: bool = True, query: str = "",
                      known_user: bool = False) -> tuple[Plan, list[Candidate]]:
    """Retrieve `pool` candidates; if fewer than `count` survive, allow earlier-shown items again."""
    plan = Plan(build_request(state, profile, exclude_shown, query, known_user), count, pool)
    found = retrieve(plan.request, pool)
    if len(found) < count and exclude_shown and state.shown:
        wider = build_request(state, profile, False, query, known_user)
        more = retrieve(wider, pool)
        if len(more) > len(found):
            plan = Plan(wider, count, pool, relaxed_shown=True)
            # keep never-shown items first
            shown = set(state.shown)
            found = sorted(more, key=lambda c: c.item.item_id in shown)
    if not found:
        plan.notes.append("Nothing in the catalog matches all of that. Try widening the years or genres, "
                          "or say \"start over\".")
    elif len(found) < count:
        plan.notes.append(f"Only {len(found)} title{'s' if len(found) != 1 else ''} in the catalog match everything "
                          "you asked for.")
    return plan, found


def guard(candidates: Sequence[Candidate], catalog: Catalog, constraints: Constraints, count: int) -> list[Candidate]:
    """The last line of defence: real catalog rows, constraints hold, no duplicates, at most `count`."""
    out, seen = [], set()
    for c in candidates:
        item = catalog.get(c.item.item_id)
        if item is None or item.item_id in seen or not constraints.allows(item):
            continue
        seen.add(item.item_id)
        out.append(c)
        if len(out) == count:
            break
    return out
