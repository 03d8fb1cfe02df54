"""Validation of the reranker during and after training, through the serving code (`LLMReranker`).

A `ValidationSet` freezes, for a seeded subset of validation users, the train-only retriever's top-n candidates
and scores. Each validation pass scores them with the LLM once (the scorer's `validation_scores`: uncalibrated,
and calibrated from the same pass), and computes full-ranking NDCG@10 for every fusion weight of the grid, with the serving fusion
(`agent.llm.fusion`: weight 0 is the retriever alone, so the tuned ranker never validates worse), and, for the
residual fusion, with the margin gate at each coverage of `gate_coverages` (the LLM acts on that share of lists,
those where the retriever's top-k margin is smallest).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from agent.llm.fusion import Fusion, margin
from agent.llm.reranker import DEFAULT_SCORER, LLMReranker
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

    def margins(self, k: int = 10) -> np.ndarray:
        """Per user, the retriever's top-k margin (agent.llm.fusion.margin) over its candidates."""
        return np.array([margin(s, k) for s in self.retriever_scores])

    def ndcg(self, llm: Sequence[np.ndarray] | None, fusion: Fusion | float, kind: str = "minmax") -> float:
        """Full-ranking NDCG@10 when the top-n is ordered by `fusion` (retriever order below); a bare number is
        the weight of a `kind` fusion."""
        if not isinstance(fusion, Fusion):
            fusion = Fusion(kind, float(fusion))
        ranks = np.empty(len(self), dtype=np.int64)
        for row in range(len(self)):
            hit = np.flatnonzero(self.candidates[row] == self.targets[row])
            if hit.size == 0:
                ranks[row] = self.retriever_ranks[row]
            elif llm is None:
                ranks[row] = hit[0]
            else:  # the target's place among the fused top-n; ties keep the retriever's order (list position)
                fused = fusion(self.retriever_scores[row], llm[row])
                ranks[row] = target_ranks(fused[None, :], hit[:1])[0]
        return float(ndcg_at(ranks, K).mean()) if len(self) else 0.0


def gate_threshold(margins: np.ndarray, coverage: float) -> float | None:
    """The margin below which the LLM acts on `coverage` of the lists (None = every list: no gate)."""
    if coverage >= 1 or not len(margins):
        return None
    return float(np.quantile(margins, coverage)) if coverage > 0 else float("-inf")


@dataclass(frozen=True)
class ValidationResult:
    retriever: float  # NDCG@10 of the retriever alone
    llm_only: float  # the LLM's order alone (calibrated as configured)
    by_weight: dict[float, float]  # fused NDCG@10 per grid weight (calibrated as configured), no gate
    by_weight_other: dict[float, float]  # the same with the calibration setting flipped
    calibrate: bool
    seconds: float
    fusion: str = "minmax"
    # residual fusion with the margin gate: coverage → (threshold, {weight: NDCG@10})
    by_gate: dict[float, tuple[float, dict[float, float]]] = field(default_factory=dict)
    gate_k: int = 10

    @property
    def best_weight(self) -> float:
        """The grid weight with the highest NDCG@10; ties go to the smaller weight (closer to the retriever)."""
        return min(self.by_weight, key=lambda w: (-self.by_weight[w], w))

    @property
    def best(self) -> float:
        return self.by_weight[self.best_weight]

    @property
    def gated(self) -> tuple[float, float, float, float] | None:
        """(coverage, threshold, weight, NDCG@10) of the best gated fusion when it beats the ungated best (ties
        keep no gate, then the larger coverage and the smaller weight); None otherwise."""
        options = [(ndcg, cov, threshold, w) for cov, (threshold, grid) in self.by_gate.items()
                   for w, ndcg in grid.items() if w > 0]
        if not options:
            return None
        ndcg, cov, threshold, w = min(options, key=lambda o: (-o[0], -o[1], o[3]))
        return (cov, threshold, w, ndcg) if ndcg > self.best + 1e-12 else None

    def fusion_choice(self) -> Fusion:
        """The tuned fusion: kind, weight and (if it helps on these users) the margin gate."""
        gated = self.gated
        if gated is None:
            return Fusion(self.fusion, self.best_weight)
        return Fusion(self.fusion, gated[2], gate_margin=gated[1], gate_k=self.gate_k)

    def as_dict(self) -> dict:
        out = {"retriever_ndcg@10": self.retriever, "llm_only_ndcg@10": self.llm_only,
               "fused_ndcg@10": self.best, "best_weight": self.best_weight, "calibrate": self.calibrate,
               "fusion": self.fusion, "by_weight": {str(w): v for w, v in self.by_weight.items()},
               f"by_weight_calibrate_{not self.calibrate}": {str(w): v for w, v in self.by_weight_other.items()},
               "seconds": round(self.seconds, 1)}
        if self.by_gate:
            out["by_gate"] = {str(c): {"threshold": t, "by_weight": {str(w): v for w, v in grid.items()}}
                              for c, (t, grid) in self.by_gate.items()}
            gated = self.gated
            out["gated"] = None if gated is None else dict(zip(("coverage", "threshold", "weight", "ndcg@10"),
                                                               gated))
        return out


def validate(backend, catalog: Catalog, vset: ValidationSet, grid: Sequence[float], calibrate: bool = True,
             history_items: int = 10, scorer: str = DEFAULT_SCORER, fusion: str = "minmax",
             gate_coverages: Sequence[float] = (), gate_k: int = 10) -> ValidationResult:
    """One LLM pass over the validation set; NDCG@10 for the retriever, the LLM alone and every grid weight
    (and, for the residual fusion, every gate coverage). An order-free scorer (segments) has nothing to
    calibrate: both variants are its raw scores."""
    import time

    started = time.perf_counter()
    n = vset.candidates.shape[1]
    reranker = LLMReranker(backend, weight=0.0, calibrate=False, max_candidates=n, history_items=history_items,
                           catalog=catalog, scorer=scorer)
    summaries = [reranker.summary(c) for c in vset.contexts]
    titles = [[catalog.at(int(i)).label for i in row] for row in vset.candidates]
    raw, calibrated = reranker.scorer.validation_scores(summaries, titles)
    chosen, other = (calibrated, raw) if calibrate else (raw, calibrated)
    by_gate = {}
    if fusion == "residual":
        margins = vset.margins(gate_k)
        for coverage in gate_coverages:
            threshold = gate_threshold(margins, coverage)
            if threshold is not None:
                by_gate[float(coverage)] = (threshold, {float(w): vset.ndcg(chosen, Fusion(
                    fusion, float(w), gate_margin=threshold, gate_k=gate_k)) for w in grid})
    return ValidationResult(retriever=vset.ndcg(None, 0.0), llm_only=vset.ndcg(chosen, 1e6, fusion),
                            by_weight={float(w): vset.ndcg(chosen, w, fusion) for w in grid},
                            by_weight_other={float(w): vset.ndcg(other, w, fusion) for w in grid},
                            calibrate=calibrate, seconds=time.perf_counter() - started, fusion=fusion,
                            by_gate=by_gate, gate_k=gate_k)
