"""The evidence of each pick of a turn (types and log statistics: retrieval/evidence.py).

For every pick: its connections to the titles the user named as anchors or liked (stated in the session or stored
in their profile) and, for a known catalog user, to the titles of their history they loved; what it meets of the
request; the genres it shares with an anchor (or liked title); its rating and popularity; the retrieval signals
that ranked it. Connections are spread over the picks: a pick's strongest connection to a title that no earlier
pick of the reply led with comes first, so five picks do not all cite the same film.
"""
from __future__ import annotations

from collections.abc import Sequence

from agent.session import SessionState
from retrieval.candidates.base import Candidate
from retrieval.catalog.schema import Catalog, Item
from retrieval.evidence import Connection, Evidence, LogEvidence, Relation, Satisfied, SharedGenres, signals_of

MAX_CONNECTIONS = 2  # per pick
MAX_SHARED = 2  # titles whose shared genres a pick lists


def gather_evidence(picks: Sequence[Candidate], state: SessionState, catalog: Catalog, log: LogEvidence | None,
                    profile_liked: Sequence[str] = (), known_user: str | None = None) -> list[Evidence]:
    """One `Evidence` per pick, in order. `log` None: no log statistics (connections, rating, popularity)."""
    items = [c.item for c in picks]
    anchors = [i for i in state.anchors if i in catalog]
    liked = [i for i in dict.fromkeys((*state.liked, *profile_liked)) if i in catalog and i not in anchors]
    connections: list[list[Connection]] = [[] for _ in picks]
    if log is not None and picks:
        sources: list[tuple[int, Relation]] = [(catalog.index_of(i), "anchor") for i in anchors]
        sources += [(catalog.index_of(i), "liked") for i in liked]
        sources += [(i, "history") for i in log.loved_by(known_user)] if known_user else []
        connections = _spread(log.connections([catalog.index_of(it.item_id) for it in items], sources))
    references = [catalog[i] for i in (anchors or liked)]
    return [Evidence(item_id=cand.item.item_id, connections=found, satisfies=satisfied(cand.item, state),
                     shared_genres=_shared(cand.item, references),
                     catalog=log.stats(catalog.index_of(cand.item.item_id)) if log is not None else None,
                     signals=signals_of(cand.sources.items()))
            for cand, found in zip(picks, connections)]


def satisfied(item: Item, state: SessionState) -> Satisfied:
    """What the item meets of the session's request (genres in their mode, years, mood, audience, exclusions)."""
    asked = list(dict.fromkeys(state.genres))
    has = set(item.genres)
    return Satisfied(genres=[g for g in asked if g in has], asked_genres=len(asked),
                     all_genres=len(asked) >= 2 and set(asked) <= has,
                     year_min=state.year_min, year_max=state.year_max,
                     moods=list(state.moods), mood_genres=[g for g in state.mood_genres if g in has],
                     audience_genres=[g for g in state.audience_genres if g in has],
                     avoided_genres=list(state.exclude_genres))


def _shared(item: Item, references: Sequence[Item]) -> list[SharedGenres]:
    shared = []
    for ref in references:
        genres = [g for g in ref.genres if g in set(item.genres)]
        if genres and ref.item_id != item.item_id:
            shared.append(SharedGenres(item_id=ref.item_id, title=ref.label, genres=genres))
    return shared[:MAX_SHARED]


def _spread(ranked: list[list[Connection]]) -> list[list[Connection]]:
    """At most MAX_CONNECTIONS per pick; a pick leads with the best connection to a title no earlier pick led with
    (within the same relation, so an anchor still comes before a liked title), when it has one."""
    led: set[str] = set()
    out = []
    for found in ranked:
        if found:
            best_relation = found[0].relation
            fresh = [c for c in found if c.relation == best_relation and c.item_id not in led]
            first = fresh[0] if fresh else found[0]
            rest = [c for c in found if c is not first and c.item_id != first.item_id]
            found = [first, *rest][:MAX_CONNECTIONS]
            led.add(first.item_id)
        out.append(found)
    return out
