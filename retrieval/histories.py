"""A known user's logged history, resolved in one place: the catalog indices of their interactions, oldest first.

Time order is a STABLE sort by timestamp, so the log's row order breaks ties (`Interactions.chronological`;
never item-id order, see docs/ARCHITECTURE.md on the evaluation protocol). The chat (a user who says "I am user
196"), the collaborative generator and sequential models all read a history through `UserHistories`, so they
see the same items in the same order as the evaluation does.
"""
from __future__ import annotations

from collections.abc import Iterable

from retrieval.catalog.schema import Interactions


class UserHistories:
    """Per user id of an interaction log, their items in time order (built lazily, once)."""

    def __init__(self, interactions: Interactions):
        self.interactions = interactions
        self._by_user: dict[str, tuple[int, ...]] | None = None

    def _resolved(self) -> dict[str, tuple[int, ...]]:
        if self._by_user is None:  # a race computes the same dict twice: harmless
            items = self.interactions.items
            by_user = {}
            for user_id, rows in zip(self.interactions.user_ids, self.interactions.chronological()):
                if len(rows):
                    # an item logged twice counts once, at its latest time (a history is what was seen, by recency)
                    by_user[user_id] = tuple(reversed(dict.fromkeys(int(i) for i in items[rows[::-1]])))
            self._by_user = by_user
        return self._by_user

    def knows(self, user_id: str | None) -> bool:
        """True for a user id with at least one interaction in this log."""
        return user_id is not None and user_id in self._resolved()

    def of(self, user_id: str | None) -> tuple[int, ...]:
        """The user's catalog indices, oldest first; () for a user this log does not know."""
        return self._resolved().get(user_id, ()) if user_id is not None else ()

    def recent(self, user_id: str | None, n: int) -> tuple[int, ...]:
        """The user's last n items, oldest first."""
        return self.of(user_id)[-n:] if n > 0 else ()


def ordered_union(*sequences: Iterable[int]) -> tuple[int, ...]:
    """The items of every sequence in order of first appearance (a history followed by newer evidence)."""
    return tuple(dict.fromkeys(int(i) for seq in sequences for i in seq))
