"""Validation of the reranker during and after training, through the serving code (`LLMReranker`).

A `ValidationSet` freezes, for a seeded subset of validation users, the train-only retriever's top-n candidates
and scores. Each validation pass scores them with the LLM once (the scorer's `validation_scores`: uncalibrated,
and calibrated from the same pass), and computes full-ranking NDCG@10 for every fusion weight of the grid
(`agent.llm.reranker.fuse`: w = 0 is the retriever alone, so the tuned ranker never validates worse).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agent.llm.reranker import DEFAULT_SCORER, LLMReranker, fuse
from finetune.data.instructions import top_candidates
from finetune.data.splits import Split
from retrieval.catalog.schema import Catalog
from retrieval.ranking import exclusion_mask, ndcg_at, target_ranks
from retrieval.recommender import Recommender, UserContext

K = 10


@dataclass(frozen=True)
class ValidationSet:
    users: np.ndarray
    contexts: tuple[UserContext, ...]
    candidates: np.ndarray  # (users, n) retriever top-n, best first
    retriever_scores: np.ndarray  # (users, n)
    targets: np.ndarray
    retriever_ranks: np.ndarray  # the target's 0-based full-ranking position under the retriever alone

    @classmethod
    def build(cls, split: Split, retriever: Recommender, n: int, users: Sequence[int]) -> "ValidationSet":
        cases = split.validation_cases(np.asarray(users, dtype=np.int64))
        histories = [c.history for c in cases]
        ids, scores = top_candidates(retriever, histories, n)
        targets = np.array([c.target for c in cases], dtype=np.int64)
        full = np.asarray(retriever.score([c.context() for c in cases]), dtype=np.float64)
        ranks = target_ranks(full, targets, exclusion_mask(histories, full.shape[1], targets))
        return cls(users=np.asarray(users), contexts=tuple(c.context() for c in cases), candidates=ids,
                   retriever_scores=scores, targets=targets, retriever_ranks=ranks)

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def recall(self) -> float:
        """Share of targets among the candidates: the reranker's ceiling."""
        return float((self.candidates == self.targets[:, None]).any(axis=1).mean())

    def ndcg(self, llm: Sequence[np.ndarray] | None, weight: float) -> float:
        """Full-ranking NDCG@10 when the top-n is ordered by retriever + weight × LLM (retriever order below)."""
        ranks = np.empty(len(self), dtype=np.int64)
        for row in range(len(self)):
            hit = np.flatnonzero(self.candidates[row] == self.targets[row])
            if hit.size == 0:
                ranks[row] = self.retriever_ranks[row]
            elif llm is None:
                ranks[row] = hit[0]
            else:  # the target's place among the fused top-n; ties keep the retriever's order (list position)
                fused = fuse(self.retriever_scores[row], llm[row], weight)
                ranks[row] = target_ranks(fused[None, :], hit[:1])[0]
        return float(ndcg_at(ranks, K).mean()) if len(self) else 0.0


@dataclass(frozen=True)
class ValidationResult:
    retriever: float  # NDCG@10 of the retriever alone
    llm_only: float  # the LLM's order alone (calibrated as configured)
    by_weight: dict[float, float]  # fused NDCG@10 per grid weight (calibrated as configured)
    by_weight_other: dict[float, float]  # the same with the calibration setting flipped
    calibrate: bool
    seconds: float

    @property
    def best_weight(self) -> float:
        """The grid weight with the highest NDCG@10; ties go to the smaller weight (closer to the retriever)."""
        return min(self.by_weight, key=lambda w: (-self.by_weight[w], w))

    @property
    def best(self) -> float:
        return self.by_weight[self.best_weight]

    def as_dict(self) -> dict:
        return {"retriever_ndcg@10": self.retriever, "llm_only_ndcg@10": self.llm_only,
                "fused_ndcg@10": self.best, "best_weight": self.best_weight, "calibrate": self.calibrate,
                "by_weight": {str(w): v for w, v in self.by_weight.items()},
                f"by_weight_calibrate_{not self.calibrate}": {str(w): v for w, v in self.by_weight_other.items()},
                "seconds": round(self.seconds, 1)}


def validate(backend, catalog: Catalog, vset: ValidationSet, grid: Sequence[float], calibrate: bool = True,
             history_items: int = 10, scorer: str = DEFAULT_SCORER) -> ValidationResult:
    """One LLM pass over the validation set; NDCG@10 for the retriever, the LLM alone and every grid weight.
    An order-free scorer (segments) has nothing to calibrate: both variants are its raw scores."""
    import time

    started = time.perf_counter()
    n = vset.candidates.shape[1]
    reranker = LLMReranker(backend, weight=0.0, calibrate=False, max_candidates=n, history_items=history_items,
                           catalog=catalog, scorer=scorer)
    summaries = [reranker.summary(c) for c in vset.contexts]
    titles = [[catalog.at(int(i)).label for i in row] for row in vset.candidates]
    raw, calibrated = reranker.scorer.validation_scores(summaries, titles)
    chosen, other = (calibrated, raw) if calibrate else (raw, calibrated)
    return ValidationResult(retriever=vset.ndcg(None, 0.0), llm_only=vset.ndcg(chosen, 1e6),
                            by_weight={float(w): vset.ndcg(chosen, w) for w in grid},
                            by_weight_other={float(w): vset.ndcg(other, w) for w in grid},
                            calibrate=calibrate, seconds=time.perf_counter() - started)
