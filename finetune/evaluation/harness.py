"""The evaluation harness (docs/ARCHITECTURE.md §6): every ranker measured alike through `Recommender.score`.

Per ranker: full-ranking metrics over all items minus the user's history (target never removed, ties by
catalog index), the 1 + N sampled view with fixed seeded negatives, validity rates of the ranker's raw
output, beyond-accuracy figures, fit time and scoring latency per user. Rerankers reorder the top
`rerank_depth` of their retriever, whose order continues below them. Afterwards: a paired bootstrap CI of
every ranker's NDCG@10 minus the best baseline's, and the protocol checks.
"""
from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from finetune.data.splits import EvalCase, Split, leave_one_out
from finetune.evaluation.beyond import beyond_accuracy
from finetune.evaluation.metrics import all_metrics, hits_from_lists, paired_bootstrap
from finetune.evaluation.ranking import checked_scores, merge_reranked
from finetune.evaluation.rankers import BuildContext, ComponentMissing, check_ranker_names, entry
from retrieval.catalog.schema import Dataset
from retrieval.config import EvalConfig
from retrieval.ranking import NO_ITEM, exclusion_mask, top_k
from retrieval.recommender import Recommender

ML100K_USERS = 943


@dataclass
class RankerResult:
    name: str
    family: str
    status: str  # "ok" | "skipped" | "failed"
    message: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    sampled: dict[str, float] = field(default_factory=dict)
    validity: dict[str, float] = field(default_factory=dict)
    beyond: dict[str, float] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    retriever: str | None = None
    ceiling_recall: float | None = None  # the retriever's Recall@rerank_depth (a reranker's ceiling)
    per_user_ndcg10: np.ndarray | None = None
    lists: np.ndarray | None = None  # (users, depth) final ranked lists

    def to_json(self) -> dict[str, Any]:
        keys = ("name", "family", "status", "message", "params", "metrics", "sampled", "validity", "beyond",
                "timing", "retriever", "ceiling_recall")
        return {k: getattr(self, k) for k in keys}


def select_users(split: Split, n: int, seed: int) -> np.ndarray:
    """All evaluated users, or a seeded sample of n of them (sorted)."""
    users = split.evaluated_users
    if n <= 0 or n >= users.size:
        return users
    return np.sort(np.random.default_rng(seed).choice(users, size=n, replace=False))


def sample_negatives(split: Split, cases: list[EvalCase], n_items: int, count: int, seed: int) -> np.ndarray:
    """(users, 1 + count) candidates: the target, then `count` items the user never interacted with.
    Drawn once per user from the seed, so every ranker sees exactly the same sets."""
    inter = split.interactions
    rng = np.random.default_rng(seed + 7919)
    out = np.empty((len(cases), count + 1), dtype=np.int64)
    for row, case in enumerate(cases):
        seen = np.zeros(n_items, dtype=bool)
        seen[inter.items[split.chronology[case.user]]] = True
        pool = np.flatnonzero(~seen)
        if pool.size < count:
            raise ValueError(f"user {case.user_id} has only {pool.size} unseen items; lower sampled_negatives")
        out[row, 0] = case.target
        out[row, 1:] = rng.choice(pool, size=count, replace=False)
    return out


class Harness:
    def __init__(self, config: EvalConfig, dataset: Dataset, home: Path, settings: Any = None,
                 log: Callable[[str], None] = print, progress: Callable[[str, int, int], None] | None = None):
        self.config = config
        self.dataset = dataset
        self.catalog = dataset.catalog
        self.n_items = len(dataset.catalog)
        self.home = Path(home)
        self.log = log
        self.progress = progress or (lambda name, done, total: None)
        self.split = leave_one_out(dataset.interactions)
        self.users = select_users(self.split, config.users, config.seed)
        self.cases = self.split.cases(config.stage, self.users)
        self.contexts = [c.context() for c in self.cases]
        self.targets = np.array([c.target for c in self.cases], dtype=np.int64)
        self.histories = [c.history for c in self.cases]
        self.sampled = sample_negatives(self.split, self.cases, self.n_items, config.sampled_negatives, config.seed)
        train = self.split.train
        self.popularity = np.bincount(train.items, minlength=self.n_items).astype(np.float64)
        self.context = BuildContext(dataset=dataset, split=self.split, home=self.home, seed=config.seed,
                                    settings=settings, log=log)
        self._models: dict[str, Recommender] = {}
        self._lists: dict[str, np.ndarray] = {}  # full-ranking lists per ranker, reused by rerankers

    # --- building -------------------------------------------------------------------------------
    def model(self, name: str) -> Recommender:
        """The fitted ranker `name` (built once per harness)."""
        if name not in self._models:
            e = entry(name)
            params = {**e.defaults, **self.config.params_for(name)}
            self.context.retriever = self.model(params["retriever"]) if e.reranks else None
            self._models[name] = e.build(self.context, {k: v for k, v in params.items() if k != "retriever"})
        return self._models[name]

    # --- running --------------------------------------------------------------------------------
    def run(self) -> list[RankerResult]:
        check_ranker_names(self.config)  # fail fast on unknown names, before hours of work
        results = [self.evaluate(name) for name in self.config.rankers]
        return results

    def evaluate(self, name: str) -> RankerResult:
        e = entry(name)
        params = {**e.defaults, **self.config.params_for(name)}
        result = RankerResult(name=name, family=e.family, status="ok", params=params,
                              retriever=params.get("retriever") if e.reranks else None)
        try:
            started = time.perf_counter()
            model = self.model(name)
            result.params = {**model.get_params(), **params}  # what the row ran with: model defaults + overrides
            result.timing["fit_s"] = round(time.perf_counter() - started, 2)
            if e.reranks:
                lists, raw, score_s = self._rerank_lists(name, model, params["retriever"])
            else:
                lists, raw, score_s = self._full_lists(name, model)
            self._lists[name] = lists
            result.timing["ms_per_user"] = round(1000 * score_s / max(len(self.cases), 1), 3)
            self._measure(result, model, lists, raw, e.reranks)
            if callable(getattr(model, "run_stats", None)):  # e.g. an LLM reranker's gate coverage
                result.params.update(model.run_stats())
        except ComponentMissing as exc:
            result.status, result.message = "skipped", f"SKIPPED {name}: {exc}"
            self.log(result.message)
        except Exception as exc:  # noqa: BLE001 - one broken ranker must not lose the other results
            result.status = "failed"
            result.message = f"FAILED {name}: {type(exc).__name__}: {exc}"
            self.log(result.message + "\n" + traceback.format_exc(limit=4))
        return result

    def _batches(self):
        size = self.config.batch_users
        for start in range(0, len(self.cases), size):
            yield slice(start, min(start + size, len(self.cases)))

    def _full_lists(self, name: str, model: Recommender) -> tuple[np.ndarray, np.ndarray, float]:
        depth, lists, raw, spent = self.config.depth, [], [], 0.0
        for part in self._batches():
            t0 = time.perf_counter()
            scores = model.score(self.contexts[part])
            spent += time.perf_counter() - t0
            scores = checked_scores(scores, part.stop - part.start, self.n_items, name)
            raw.append(top_k(scores, depth))  # what the ranker would show without our filter
            excluded = exclusion_mask(self.histories[part], self.n_items, self.targets[part])
            lists.append(top_k(scores, depth, excluded))
            self.progress(name, part.stop, len(self.cases))
        return np.concatenate(lists), np.concatenate(raw), spent

    def _retriever_lists(self, retriever: str) -> np.ndarray:
        if retriever not in self._lists:
            self.log(f"ranking with retriever {retriever!r} (needed by a reranker)")
            self._lists[retriever] = self._full_lists(retriever, self.model(retriever))[0]
        return self._lists[retriever]

    def _rerank_lists(self, name: str, model: Recommender, retriever: str) -> tuple[np.ndarray, np.ndarray, float]:
        base = self._retriever_lists(retriever)
        candidates = base[:, :self.config.rerank_depth]
        if (candidates == NO_ITEM).any():
            raise ValueError(f"retriever {retriever!r} returned fewer than {self.config.rerank_depth} rankable items")
        lists, spent = [], 0.0
        for part in self._batches():
            cand = candidates[part]
            t0 = time.perf_counter()
            scores = model.score(self.contexts[part], cand)
            spent += time.perf_counter() - t0
            scores = checked_scores(scores, cand.shape[0], cand.shape[1], name)
            keyed = np.where(np.isfinite(scores), scores, -np.inf)
            order = np.lexsort((cand, -keyed), axis=1)  # equal scores: lower catalog index first
            reranked = np.take_along_axis(cand, order, axis=1)
            lists.append(merge_reranked(reranked, base[part], self.config.depth))
            self.progress(name, part.stop, len(self.cases))
        lists = np.concatenate(lists)
        return lists, lists, spent

    # --- measuring ------------------------------------------------------------------------------
    def _measure(self, result: RankerResult, model: Recommender, lists: np.ndarray, raw: np.ndarray,
                 reranks: bool) -> None:
        cfg = self.config
        hits = hits_from_lists(lists, self.targets)
        per_user = all_metrics(hits, 1, cfg.ks, tuple(cfg.metrics))
        per_user["hr@1"] = all_metrics(hits, 1, [1], ("hr",))["hr@1"]
        result.metrics = {k: float(v.mean()) for k, v in per_user.items()}
        result.per_user_ndcg10 = all_metrics(hits, 1, [10], ("ndcg",))["ndcg@10"]
        result.lists = lists
        result.sampled = self._sampled_view(result.name, model)
        result.validity = self._validity(lists, raw)
        result.beyond = beyond_accuracy(lists[:, :cfg.beyond_k], self.catalog, self.popularity,
                                        self.split.interactions.n_users, cfg.long_tail_head)
        if reranks:
            base_hits = hits_from_lists(self._lists[result.retriever][:, :cfg.rerank_depth], self.targets)
            result.ceiling_recall = float(base_hits.any(axis=1).mean())

    def _sampled_view(self, name: str, model: Recommender) -> dict[str, float]:
        """1 + N candidates per user (target + fixed negatives); the ranker scores exactly these."""
        ranked = []
        for part in self._batches():
            cand = self.sampled[part]
            scores = checked_scores(model.score(self.contexts[part], cand), cand.shape[0], cand.shape[1], name)
            keyed = np.where(np.isfinite(scores), scores, -np.inf)
            ranked.append(np.take_along_axis(cand, np.lexsort((cand, -keyed), axis=1), axis=1))
        hits = hits_from_lists(np.concatenate(ranked), self.targets)
        per_user = all_metrics(hits, 1, self.config.sampled_ks, ("hr", "ndcg"))
        return {k: float(v.mean()) for k, v in per_user.items()}

    def _validity(self, lists: np.ndarray, raw: np.ndarray) -> dict[str, float]:
        """Rates over the first beyond_k slots. out_of_catalog: slots without a valid catalog item (no finite
        score / index outside the catalog); duplicate: repeated items in the final list; history_repeat:
        items of the user's history in the ranker's RAW output (before the harness removes them)."""
        k = self.config.beyond_k
        final, raw = lists[:, :k], raw[:, :k]
        slots = final.size
        ooc = int(((final < 0) | (final >= self.n_items)).sum())
        dup = sum(len(row[row >= 0]) - len(set(row[row >= 0].tolist())) for row in final)
        repeat = sum(int(np.isin(row, [h for h in hist if h != t]).sum())
                     for row, hist, t in zip(raw, self.histories, self.targets))
        return {"out_of_catalog": ooc / slots, "duplicate": dup / slots, "history_repeat": repeat / slots}


# --- comparisons and checks ---------------------------------------------------------------------------
def best_baseline(results: list[RankerResult]) -> RankerResult | None:
    pool = [r for r in results if r.status == "ok" and r.family in ("baseline", "floor")]
    return max(pool, key=lambda r: r.metrics["ndcg@10"], default=None)


def bootstrap_vs_best(results: list[RankerResult], samples: int, seed: int) -> dict[str, Any]:
    best = best_baseline(results)
    if best is None:
        return {"best_baseline": None, "comparisons": {}}
    comparisons = {r.name: paired_bootstrap(r.per_user_ndcg10, best.per_user_ndcg10, samples, seed)
                   for r in results if r.status == "ok" and r.name != best.name}
    return {"best_baseline": best.name, "metric": "ndcg@10", "comparisons": comparisons}


def protocol_checks(results: list[RankerResult], config: EvalConfig, dataset: Dataset,
                    n_users: int) -> list[dict[str, Any]]:
    by_name = {r.name: r for r in results if r.status == "ok"}
    checks: list[dict[str, Any]] = []
    full = (dataset.catalog.name == "ml-100k" and config.stage == "test" and n_users == ML100K_USERS)
    mostpop = by_name.get("mostpop")
    c = config.checks
    for metric, expected in (("recall@10", c.mostpop_recall_at_10), ("ndcg@10", c.mostpop_ndcg_at_10)):
        check = {"name": f"MostPop {metric} ≈ {expected:.4f} ± {c.tolerance}", "expected": expected}
        if mostpop is None:
            check.update(status="N/A", detail="mostpop was not run")
        elif not full:
            check.update(status="N/A", value=mostpop.metrics[metric],
                         detail=f"only defined for the full ML-100k test run ({n_users} users evaluated)")
        else:
            value = mostpop.metrics[metric]
            check.update(status="PASS" if abs(value - expected) <= c.tolerance else "FAIL", value=value)
        checks.append(check)
    canary = by_name.get("next-id-canary")
    check = {"name": "next-id leak canary NDCG@10 < MostPop NDCG@10"}
    if canary is None or mostpop is None:
        check.update(status="N/A", detail="needs both mostpop and next-id-canary in the run")
    else:
        value, bound = canary.metrics["ndcg@10"], mostpop.metrics["ndcg@10"]
        check.update(status="PASS" if value < bound else "FAIL", value=value, bound=bound)
    checks.append(check)
    return checks
