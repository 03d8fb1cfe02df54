"""What the systems of the benchmark may see, and the check that they see nothing more.

The stage decides, as in `marquee eval` (`finetune/data/splits.py`): at `test` the target is each user's last
item and every system sees train plus the user's validation item; at `validation` (tuning) the target is the
validation item and every system sees train only (neither the validation nor the test item). The chat agent is
built over `RetrievalService.with_interactions(visible)`, so its collaborative models, popularity prior and a
known user's history (what it excludes as already seen) come from that part alone. `check_no_leak` proves it
before any request is sent: no held-out interaction of the stage is in the log the agent uses, its popularity
counts are those of that log, and no user's history contains their target unless the visible part does.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from finetune.data.splits import Split
from retrieval.catalog.schema import Catalog, Interactions
from retrieval.config.conversational import STAGES


class LeakError(RuntimeError):
    """A system could see a held-out interaction of an evaluated user."""


def _checked(stage: str) -> str:
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
    return stage


def visible_rows(split: Split, stage: str) -> np.ndarray:
    """Row numbers of the log every system may see (sorted: the file's order is kept)."""
    if _checked(stage) == "validation":
        return split.train_rows
    return np.sort(np.concatenate([split.train_rows, split.validation_rows[split.validation_rows >= 0]]))


def held_out_rows(split: Split, stage: str) -> list[np.ndarray]:
    """Per kind of held-out interaction, one row per user (-1: none): the target and everything after it."""
    if _checked(stage) == "validation":
        return [split.validation_rows, split.test_rows]
    return [split.test_rows]


def target_rows(split: Split, stage: str) -> np.ndarray:
    """Per user, the row of the stage's target (-1 for users kept in train only)."""
    return split.validation_rows if _checked(stage) == "validation" else split.test_rows


def visible_interactions(split: Split, stage: str) -> Interactions:
    inter, rows = split.interactions, visible_rows(split, stage)
    return Interactions(user_ids=inter.user_ids, users=inter.users[rows], items=inter.items[rows],
                        ratings=inter.ratings[rows], timestamps=inter.timestamps[rows])


def visible_histories(split: Split, stage: str, users: Sequence[int]) -> list[tuple[int, ...]]:
    """Per user, the visible items in time order (what a ranker scores from): `marquee eval`'s case histories."""
    return [case.history for case in split.cases(_checked(stage), np.asarray(users, dtype=np.int64))]


def check_no_leak(seen: Interactions, catalog: Catalog, split: Split, users: Sequence[int], stage: str = "test",
                  histories: Sequence[tuple[int, ...]] | None = None, user_history=None) -> None:
    """Raise `LeakError` when the log `seen` (and `catalog`'s popularity, and `user_history(user_id)` →
    item ids, when given) reveals a held-out interaction of the `stage` for one of `users`: at test the
    last item, at validation the validation item and the last one."""
    inter = split.interactions
    seen_ids = {u: i for i, u in enumerate(seen.user_ids)} if seen.user_ids != inter.user_ids else None
    seen_rows = {(int(u), int(i), int(t)) for u, i, t in zip(seen.users, seen.items, seen.timestamps)}
    counts = np.bincount(seen.items, minlength=len(catalog)) if len(seen) else np.zeros(len(catalog), np.int64)
    for n, user in enumerate(users):
        for held in held_out_rows(split, stage):
            row = int(held[user])
            if row < 0:
                continue
            user_id, item, stamp = inter.user_ids[user], int(inter.items[row]), int(inter.timestamps[row])
            seen_user = user if seen_ids is None else seen_ids.get(user_id)
            if seen_user is not None and (int(seen_user), item, stamp) in seen_rows:
                raise LeakError(f"user {user_id}'s held-out target {catalog.at(item).label} is in the log the "
                                f"system sees at stage {stage!r} (build it over the visible part only: "
                                "RetrievalService.with_interactions)")
            if catalog.at(item).popularity != counts[item]:
                raise LeakError(f"the popularity of {catalog.at(item).label} ({catalog.at(item).popularity}) is not "
                                f"counted on the log the system sees ({counts[item]}): held-out interactions leak "
                                "through the catalog")
            if user_history is not None:
                visible = set(histories[n]) if histories is not None else set()
                if item not in visible and catalog.at(item).item_id in user_history(user_id):
                    raise LeakError(f"user {user_id}'s history as the system sees it contains the held-out "
                                    f"target {catalog.at(item).label}")


def check_agent(agent, split: Split, users: Sequence[int], histories: Sequence[tuple[int, ...]],
                stage: str = "test") -> None:
    """`check_no_leak` on what a `RecommenderAgent` actually uses: its service's log and catalog, and the
    history it attaches to a known user."""
    check_no_leak(agent.service.dataset.interactions, agent.catalog, split, users, stage, histories,
                  user_history=lambda uid: agent.user_history(uid) if agent.known_user(uid) else frozenset())
