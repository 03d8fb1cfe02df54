"""Per-user chronological leave-one-out (docs/ARCHITECTURE.md §6).

Each user's interactions are put in time order with a STABLE sort that keeps the data file's row order
for equal timestamps (`Interactions.chronological`). Never break ties by item id: 44% of ML-100k users
rate their last two items in the same second, and with id order "the id just above the last one" becomes
a leak that sequential models learn. Last interaction = test, second last = validation, the rest = train.
Users with fewer than `min_interactions` interactions stay entirely in train and are not evaluated.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from retrieval.catalog.schema import Interactions
from retrieval.recommender import UserContext


@dataclass(frozen=True, slots=True)
class EvalCase:
    """One held-out interaction: what the ranker may see (`history`, oldest first) and what it must find."""

    user: int  # index into Interactions.user_ids
    user_id: str
    history: tuple[int, ...]  # catalog indices, chronological
    target: int  # catalog index

    def context(self) -> UserContext:
        return UserContext(history=self.history, user_id=self.user_id)


@dataclass(frozen=True)
class Split:
    """Row numbers (into `interactions`) of train / validation / test, plus the derived views."""

    interactions: Interactions
    train_rows: np.ndarray  # sorted ascending, so train keeps the file's row order
    validation_rows: np.ndarray  # one per evaluated user, or -1 for users kept in train only
    test_rows: np.ndarray
    chronology: tuple[np.ndarray, ...]  # per user, all row numbers in time order

    @cached_property
    def train(self) -> Interactions:
        """Train interactions only (same user index space; row order of the file)."""
        inter, rows = self.interactions, self.train_rows
        return Interactions(user_ids=inter.user_ids, users=inter.users[rows], items=inter.items[rows],
                            ratings=inter.ratings[rows], timestamps=inter.timestamps[rows])

    @cached_property
    def train_sequences(self) -> tuple[tuple[int, ...], ...]:
        """Per user, the train items in time order (the validation history)."""
        held_out = set(self.validation_rows[self.validation_rows >= 0].tolist())
        held_out |= set(self.test_rows[self.test_rows >= 0].tolist())
        items = self.interactions.items
        return tuple(tuple(int(items[r]) for r in rows if r not in held_out) for rows in self.chronology)

    @property
    def evaluated_users(self) -> np.ndarray:
        return np.flatnonzero(self.test_rows >= 0)

    def validation_cases(self, users: np.ndarray | None = None) -> list[EvalCase]:
        """History = train items; target = the second-to-last item."""
        return [self._case(u, self.train_sequences[u], self.validation_rows[u]) for u in self._users(users)]

    def test_cases(self, users: np.ndarray | None = None) -> list[EvalCase]:
        """History = train + validation items; target = the last item."""
        items = self.interactions.items
        return [self._case(u, self.train_sequences[u] + (int(items[self.validation_rows[u]]),), self.test_rows[u])
                for u in self._users(users)]

    def cases(self, stage: str, users: np.ndarray | None = None) -> list[EvalCase]:
        if stage not in ("validation", "test"):
            raise ValueError(f"unknown evaluation stage {stage!r}; use 'validation' or 'test'")
        return self.validation_cases(users) if stage == "validation" else self.test_cases(users)

    def _users(self, users: np.ndarray | None) -> np.ndarray:
        evaluated = self.evaluated_users
        if users is None:
            return evaluated
        users = np.asarray(users, dtype=np.int64)
        missing = np.setdiff1d(users, evaluated)
        if missing.size:
            raise ValueError(f"users {missing[:5].tolist()} have no held-out interactions "
                             f"(fewer than 3 interactions); pick from Split.evaluated_users")
        return users

    def _case(self, user: int, history: tuple[int, ...], row: int) -> EvalCase:
        return EvalCase(user=int(user), user_id=self.interactions.user_ids[user], history=history,
                        target=int(self.interactions.items[row]))


def leave_one_out(interactions: Interactions, min_interactions: int = 3) -> Split:
    """Split every user with at least `min_interactions` interactions: last = test, second last = validation."""
    if min_interactions < 3:
        raise ValueError("min_interactions must be at least 3 (one train, one validation, one test interaction)")
    if len(interactions) == 0:
        raise ValueError("cannot split an empty interaction log")
    chronology = tuple(interactions.chronological())
    validation = np.full(interactions.n_users, -1, dtype=np.int64)
    test = np.full(interactions.n_users, -1, dtype=np.int64)
    for user, rows in enumerate(chronology):
        if len(rows) >= min_interactions:
            validation[user], test[user] = rows[-2], rows[-1]
    held_out = np.concatenate([validation[validation >= 0], test[test >= 0]])
    train_rows = np.setdiff1d(np.arange(len(interactions)), held_out)  # sorted: keeps file order
    return Split(interactions=interactions, train_rows=train_rows, validation_rows=validation,
                 test_rows=test, chronology=chronology)
