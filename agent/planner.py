"""Planning one turn's retrieval from the session state: the candidate request (query text, hard
constraints, collaborative signal), a final guard that every pick is a real, allowed, new item, and the
choice of the reply's picks from the ranked candidates (`select_picks`).

Hard constraints are never relaxed. When too few items are left, the only thing given back is the
"not shown before" rule, and the reply says when even that is not enough. Titles the user liked, named
as an anchor ("more like X"), saw or disliked are excluded ids of every request, and the guard checks
them again.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from agent.locale import Note
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
    notes: list[Note] = field(default_factory=list)  # worded in the reply's language by the pipeline


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
                  known_user: bool = False, words: str | None = None) -> CandidateRequest:
    """`query`: the search text (default `query_text`); `words`: the user's own content words in it (default the
    session's free text: what the parser did not understand as genres, years, counts, titles or chit-chat)."""
    constraints = state.constraints(exclude_shown=exclude_shown,
                                    extra_excluded=frozenset(profile.disliked) | frozenset(profile.seen))
    liked = tuple(dict.fromkeys((*state.anchors, *state.liked, *profile.liked)))  # anchors lead
    disliked = tuple(dict.fromkeys((*state.disliked, *profile.disliked)))
    moods = frozenset(g for g in state.mood_genres if g not in state.exclude_genres)
    return CandidateRequest(query=query or query_text(state), constraints=constraints, liked=liked,
                            disliked=disliked, user_id=state.user_id if known_user else None,
                            words=state.query if words is None else words, mood_genres=moods)


def plan_and_retrieve(state: SessionState, profile: Profile, retrieve: Retrieve, count: int, pool: int,
                      exclude_shown: bool = True, query: str = "", known_user: bool = False,
                      words: str | None = None) -> tuple[Plan, list[Candidate]]:
    """Retrieve `pool` candidates; if fewer than `count` survive, allow earlier-shown items again."""
    plan = Plan(build_request(state, profile, exclude_shown, query, known_user, words), count, pool)
    found = _with_blends(retrieve(plan.request, pool), plan.request, state, retrieve, count, pool)
    if len(found) < count and exclude_shown and state.shown:
        wider = build_request(state, profile, False, query, known_user, words)
        more = _with_blends(retrieve(wider, pool), wider, state, retrieve, count, pool)
        if len(more) > len(found):
            plan = Plan(wider, count, pool, relaxed_shown=True)
            # keep never-shown items first
            shown = set(state.shown)
            found = sorted(more, key=lambda c: c.item.item_id in shown)
    if not found:
        plan.notes.append(Note("nothing_fits"))
    elif len(found) < count:
        plan.notes.append(Note("only_one") if len(found) == 1 else Note("only_some", {"n": len(found)}))
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


def _blends(genres: Sequence[str], item_genres: Sequence[str]) -> bool:
    """The item has two or more of the wanted genres ("sci-fi and action": both)."""
    return len(set(genres) & set(item_genres)) >= 2


def _with_blends(found: list[Candidate], request: CandidateRequest, state: SessionState, retrieve: Retrieve,
                 count: int, pool: int) -> list[Candidate]:
    """For a "blend" request make sure the pool holds enough candidates with two of the genres for
    `select_picks` to give half of the picks both (when the catalog has them)."""
    if state.genre_mode != "blend" or len(state.genres) < 2:
        return found
    need = math.ceil(count / 2)
    if sum(_blends(state.genres, c.item.genres) for c in found) >= need:
        return found
    both = replace(request, constraints=replace(request.constraints, genre_mode="all",
                                                include_genres=frozenset(state.genres)))
    have = {c.item.item_id for c in found}
    extra = [c for c in retrieve(both, need) if c.item.item_id not in have]
    if not extra:
        return found
    overflow = len(found) + len(extra) - pool
    if overflow > 0:  # make room by dropping the lowest-ranked one-genre candidates
        drop = {id(c) for c in [c for c in reversed(found) if not _blends(state.genres, c.item.genres)][:overflow]}
        found = [c for c in found if id(c) not in drop]
    return found + extra


def select_picks(candidates: Sequence[Candidate], count: int, genres: Sequence[str] = (),
                 genre_mode: str = "any") -> list[Candidate]:
    """The reply's picks: the first `count` ranked candidates, except that a "blend" request ("sci-fi and
    action films": each pick one of the genres) gets at least half of its picks with two or more of them
    when enough such candidates exist. The best-ranked two-genre candidates replace the lowest-ranked
    one-genre picks; the picks keep their rank order."""
    picks = list(candidates[:count])
    if genre_mode != "blend" or len(set(genres)) < 2:
        return picks
    need = math.ceil(len(picks) / 2)
    have = sum(_blends(genres, c.item.genres) for c in picks)
    spare = [c for c in candidates[count:] if _blends(genres, c.item.genres)]
    while have < need and spare:
        weakest = max(i for i, c in enumerate(picks) if not _blends(genres, c.item.genres))
        picks[weakest] = spare.pop(0)
        have += 1
    rank = {id(c): n for n, c in enumerate(candidates)}
    return sorted(picks, key=lambda c: rank[id(c)])
