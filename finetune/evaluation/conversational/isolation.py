"""What the systems of the benchmark may see, and the check that they see nothing more.

Every system sees the same part of the log: the train split of the leave-one-out protocol
(`finetune/data/splits.py`), or train plus each user's validation item. The chat agent is built over
`RetrievalService.with_interactions(visible)`, so its collaborative models, popularity prior and a known
user's history (what it excludes as already seen) come from that part alone. `check_no_leak` proves it
before any request is sent: no held-out test interaction is in the log the agent uses, its popularity
counts are those of that log, and no user's history contains their target unless the visible part does.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from finetune.data.splits import Split
from retrieval.catalog.schema import Catalog, Interactions


class LeakError(RuntimeError):
    """A system could see a held-out interaction of an evaluated user."""


def visible_rows(split: Split, history: str) -> np.ndarray:
    """Row numbers of the log every system may see (sorted: the file's order is kept)."""
    if history == "train":
        return split.train_rows
    if history == "train+validation":
        return np.sort(np.concatenate([split.train_rows, split.validation_rows[split.validation_rows >= 0]]))
    raise ValueError(f"history must be 'train' or 'train+validation', got {history!r}")


def visible_interactions(split: Split, history: str) -> Interactions:
    inter, rows = split.interactions, visible_rows(split, history)
    return Interactions(user_ids=inter.user_ids, users=inter.users[rows], items=inter.items[rows],
                        ratings=inter.ratings[rows], timestamps=inter.timestamps[rows])


def visible_histories(split: Split, history: str, users: Sequence[int]) -> list[tuple[int, ...]]:
    """Per user, the visible items in time order (what a ranker scores from)."""
    train, items = split.train_sequences, split.interactions.items
    if history == "train":
        return [train[u] for u in users]
    visible_rows(split, history)  # validates the name
    return [train[u] + (int(items[split.validation_rows[u]]),) for u in users]


def check_no_leak(seen: Interactions, catalog: Catalog, split: Split, users: Sequence[int],
                  histories: Sequence[tuple[int, ...]] | None = None, user_history=None) -> None:
    """Raise `LeakError` when the log `seen` (and `catalog`'s popularity, and `user_history(user_id)` →
    item ids, when given) reveals a held-out test interaction of one of `users`."""
    inter = split.interactions
    if seen.user_ids != inter.user_ids:
        seen_ids = {u: i for i, u in enumerate(seen.user_ids)}
    else:
        seen_ids = None
    seen_rows = {(int(u), int(i), int(t)) for u, i, t in zip(seen.users, seen.items, seen.timestamps)}
    counts = np.bincount(seen.items, minlength=len(catalog)) if len(seen) else np.zeros(len(catalog), np.int64)
    for n, user in enumerate(users):
        row = int(split.test_rows[user])
        if row < 0:
            continue
        user_id, target, stamp = inter.user_ids[user], int(inter.items[row]), int(inter.timestamps[row])
        seen_user = user if seen_ids is None else seen_ids.get(user_id)
        if seen_user is not None and (int(seen_user), target, stamp) in seen_rows:
            raise LeakError(f"user {user_id}'s held-out target {catalog.at(target).label} is in the log the "
                            "system sees (build it over the visible part only: RetrievalService.with_interactions)")
        if catalog.at(target).popularity != counts[target]:
            raise LeakError(f"the popularity of {catalog.at(target).label} ({catalog.at(target).popularity}) is not "
                            f"counted on the log the system sees ({counts[target]}): held-out interactions leak "
                            "through the catalog")
        if user_history is not None:
            visible = set(histories[n]) if histories is not None else set()
            if target not in visible and catalog.at(target).item_id in user_history(user_id):
                raise LeakError(f"user {user_id}'s history as the system sees it contains the held-out "
                                f"target {catalog.at(target).label}")


def check_agent(agent, split: Split, users: Sequence[int], histories: Sequence[tuple[int, ...]]) -> None:
    """`check_no_leak` on what a `RecommenderAgent` actually uses: its service's log and catalog, and the
    history it attaches to a known user."""
    check_no_leak(agent.service.dataset.interactions, agent.catalog, split, users, histories,
                  user_history=lambda uid: agent.user_history(uid) if agent.known_user(uid) else frozenset())
