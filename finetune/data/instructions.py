"""Instruction examples for the LLM reranker, from TRAIN interactions only.

Each user's last `targets_per_user` train positions become targets; a target's history is the items before it.
Candidates are the base retriever's top `candidates` for that history (hard negatives); when the retriever
missed the target it replaces the last candidate. Every time an example is rendered (each epoch) its
candidates get a fresh seeded permutation, so with an order-sensitive scorer (listwise) the target's label is
uniform over positions: the model can only lower its loss by reading the titles, not by learning label positions.

Leak-freedom: the retriever that proposes candidates is fitted on a nested leave-one-out of TRAIN with the
instruction targets cut off (`retriever_split`), so it has seen neither validation/test items nor the targets
it proposes candidates for — the same situation as at validation/test time. Examples come from the scorer's
`training_example` (`agent.llm.scorers`), which builds the prompt exactly as inference does.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.llm.prompting import UserSummary
from finetune.data.splits import Split, leave_one_out
from retrieval.catalog.schema import Catalog, Dataset, Interactions
from retrieval.ranking import NO_ITEM, exclusion_mask, top_k
from retrieval.recommender import Recommender, UserContext


@dataclass(frozen=True)
class Instance:
    """One training target: what the reranker sees (history, candidates) and which candidate is right."""

    user: int
    history: tuple[int, ...]  # catalog indices, chronological, all strictly before the target
    candidates: tuple[int, ...]  # retriever order (best first); contains the target exactly once
    target: int
    retriever_hit: bool  # the retriever found the target itself (else it was inserted)
    retriever_scores: tuple[float, ...] = ()

    @property
    def target_index(self) -> int:
        return self.candidates.index(self.target)


def user_summary(catalog: Catalog, history: Sequence[int], history_items: int) -> UserSummary:
    """The user context exactly as `LLMReranker.summary` builds it for a history-only user."""
    return UserSummary(recent=tuple(catalog.at(int(i)).label for i in list(history)[-history_items:]))


def target_positions(split: Split, targets_per_user: int, min_history: int,
                     users: Sequence[int] | None = None) -> list[tuple[int, tuple[int, ...], int]]:
    """(user, history, target) for each user's last `targets_per_user` TRAIN positions, oldest first."""
    out = []
    for user in (range(split.interactions.n_users) if users is None else users):
        seq = split.train_sequences[user]
        first = max(min_history, len(seq) - targets_per_user)
        out.extend((int(user), tuple(seq[:p]), int(seq[p])) for p in range(first, len(seq)))
    return out


def retriever_split(split: Split, targets_per_user: int) -> Split:
    """A nested leave-one-out of TRAIN whose train part ends before every instruction target.

    Its validation item (for the retriever's early stopping) is the earliest instruction target; its test item
    is unused. Built from train rows only, so held-out validation/test interactions cannot reach the retriever.
    """
    train = split.train
    drop = max(targets_per_user - 2, 0)  # leave_one_out itself holds out two more per user
    keep = np.ones(len(train), dtype=bool)
    for rows in train.chronological():
        if len(rows) - drop >= 3:
            keep[rows[len(rows) - drop:]] = False
    prefix = Interactions(user_ids=train.user_ids, users=train.users[keep], items=train.items[keep],
                          ratings=train.ratings[keep], timestamps=train.timestamps[keep])
    return leave_one_out(prefix)


def fit_retriever(name: str, split: Split, dataset: Dataset, home: Path, seed: int = 0, settings: Any = None,
                  params: dict[str, Any] | None = None, log: Callable[[str], None] = print) -> Recommender:
    """The `marquee eval` ranker `name`, fitted on `split.train` (same registry, defaults and caches)."""
    from finetune.evaluation.rankers import BuildContext, entry

    e = entry(name)
    if e.reranks:
        raise ValueError(f"{name!r} is a reranker; the base retriever must be a plain ranker (e.g. sasrec, ease)")
    ctx = BuildContext(dataset=dataset, split=split, home=Path(home), seed=seed, settings=settings, log=log)
    return e.build(ctx, {**e.defaults, **(params or {})})


def top_candidates(retriever: Recommender, histories: Sequence[Sequence[int]], n: int, batch: int = 256,
                   targets: Sequence[int] | None = None):
    """(users, n) best unseen items per history and their scores; equal scores by item index (as in eval).
    With `targets`, also each target's own score (users,): what the retriever thinks of it, listed or not."""
    ids, scores, target_scores = [], [], []
    for start in range(0, len(histories), batch):
        chunk = histories[start:start + batch]
        full = np.asarray(retriever.score([UserContext(history=tuple(h)) for h in chunk]), dtype=np.float64)
        order = top_k(full, n, exclusion_mask(chunk, full.shape[1]))
        if (order == NO_ITEM).any():
            raise ValueError(f"the retriever scored fewer than {n} unseen items for some history")
        ids.append(order)
        scores.append(np.take_along_axis(full, order, axis=1))
        if targets is not None:
            target_scores.append(full[np.arange(len(chunk)), np.asarray(targets[start:start + batch])])
    if targets is None:
        return np.concatenate(ids), np.concatenate(scores)
    return np.concatenate(ids), np.concatenate(scores), np.concatenate(target_scores)


def build_instances(split: Split, retriever: Recommender, targets_per_user: int = 5, candidates: int = 20,
                    min_history: int = 3, users: Sequence[int] | None = None) -> list[Instance]:
    """Targets with the retriever's hard negatives (history excluded, target inserted when missed). Each
    candidate keeps the retriever's score (the distillation teacher's), the inserted target its own score."""
    positions = target_positions(split, targets_per_user, min_history, users)
    if not positions:
        raise ValueError(f"no user has more than {min_history} train interactions: nothing to train on")
    ids, scores, target_scores = top_candidates(retriever, [h for _, h, _ in positions], candidates,
                                                targets=[t for _, _, t in positions])
    out = []
    for (user, history, target), row, row_scores, own in zip(positions, ids, scores, target_scores):
        row, row_scores = [int(i) for i in row], [float(s) for s in row_scores]
        hit = target in row
        if not hit:  # the reranker can only learn to find the target if it is there: replace the weakest
            row[-1] = target
            row_scores[-1] = min(float(own), row_scores[-2]) if len(row_scores) > 1 else float(own)
        out.append(Instance(user=user, history=history, candidates=tuple(row), target=target, retriever_hit=hit,
                            retriever_scores=tuple(row_scores)))
    return out


def user_folds(users: Sequence[int], folds: int, seed: int) -> list[np.ndarray]:
    """`users` in `folds` seeded, disjoint, near-equal groups (cross-fitting)."""
    shuffled = np.random.default_rng([seed, folds]).permutation(np.asarray(users, dtype=np.int64))
    return [np.sort(part) for part in np.array_split(shuffled, folds)]


def cross_fitted_instances(split: Split, fit: Callable[[Split], Recommender], folds: int, targets_per_user: int,
                           candidates: int = 20, min_history: int = 3, users: Sequence[int] | None = None,
                           seed: int = 0, log: Callable[[str], None] = print) -> list[Instance]:
    """Instances of every target position, each fold's proposed (and scored) by a retriever fitted only on the
    OTHER folds' train interactions: it never saw these users, so no target leaks into its scores, even when
    every train position is a target. `fit(split)` fits the retriever on `split.train`."""
    users = np.arange(split.interactions.n_users) if users is None else np.asarray(users)
    train = split.train
    out: list[Instance] = []
    for k, fold in enumerate(user_folds(users, folds, seed)):
        others = ~np.isin(train.users, fold)
        subset = Interactions(user_ids=train.user_ids, users=train.users[others], items=train.items[others],
                              ratings=train.ratings[others], timestamps=train.timestamps[others])
        log(f"teacher fold {k + 1}/{folds}: fitted on {int(others.sum())} train interactions of "
            f"{len(np.unique(train.users[others]))} other users, scoring {len(fold)} users")
        out += build_instances(split, fit(leave_one_out(subset)), targets_per_user, candidates, min_history, fold)
    return out


def permutation(seed: int, epoch: int, index: int, n: int) -> tuple[int, ...]:
    """The candidate order of example `index` in `epoch`: fresh each epoch, reproducible (resume-safe)."""
    return tuple(int(i) for i in np.random.default_rng([seed, epoch, index]).permutation(n))


class InstructionDataset:
    """Indexable examples for one epoch (`scorer.training_example`): `dataset.epoch = e` re-permutes every
    example's candidates."""

    def __init__(self, instances: Sequence[Instance], scorer, catalog: Catalog, seed: int = 0):
        self.instances = list(instances)
        self.scorer, self.catalog = scorer, catalog  # an agent.llm.scorers.Scorer (tokenizer, history_items)
        self.seed, self.epoch = seed, 0
        self.cache: list | None = None  # frozen-layer hidden states per example (finetune.training.frozen_cache)
        self.cache_start = 0

    def __len__(self) -> int:
        return len(self.instances)

    def __getitem__(self, index: int) -> dict[str, Any]:
        inst = self.instances[index]
        order = permutation(self.seed, self.epoch, index, len(inst.candidates))
        user = user_summary(self.catalog, inst.history, self.scorer.history_items)
        item = self.scorer.training_example(user, [self.catalog.at(i).label for i in inst.candidates],
                                            inst.target_index, order)
        if self.scorer.supports_distillation:  # candidates in the teacher's order: its scores line up
            item["teacher"] = inst.retriever_scores
        if self.cache is not None:
            item.update(hidden=self.cache[index], start=self.cache_start)
        return item

    def stats(self) -> dict[str, Any]:
        hits = [i.retriever_hit for i in self.instances]
        return {"examples": len(self.instances), "users": len({i.user for i in self.instances}),
                "retriever_recall": float(np.mean(hits)) if hits else 0.0,
                "mean_history": float(np.mean([len(i.history) for i in self.instances])) if hits else 0.0}
