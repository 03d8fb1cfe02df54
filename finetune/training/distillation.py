"""The distillation teacher's temperature, chosen on validation.

Training can distil the retriever (the teacher, e.g. `sasrec+ease`) into the LLM scorer: the loss is
KL(softmax(teacher / T) ‖ softmax(student)) over each example's candidates + λ × CE on the real next item
(`agent.llm.scorers.Scorer.candidate_loss`). T sets how sharp the soft targets are; with `distill_temperature = 0`
it is the T under which the teacher's own softmax over its top-n best predicts the validation targets (lowest
negative log-likelihood of the target among the candidates): the soft targets are then calibrated probabilities.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TEMPERATURES = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0)


def target_nll(scores: np.ndarray, candidates: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    """Mean −log softmax(scores / T)[target] over the rows whose candidates contain the target (NaN if none)."""
    hit = candidates == targets[:, None]
    rows = hit.any(axis=1)
    if not rows.any():
        return float("nan")
    z = scores[rows] / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[hit[rows]].mean())


def choose_temperature(vset, grid: Sequence[float] = TEMPERATURES) -> tuple[float, dict[float, float]]:
    """(best T, NLL per T) of a `finetune.training.validation.ValidationSet`'s retriever scores; ties → larger T
    (softer targets)."""
    nll = {float(t): target_nll(np.asarray(vset.retriever_scores, dtype=np.float64), vset.candidates,
                                vset.targets, float(t)) for t in grid}
    finite = {t: v for t, v in nll.items() if np.isfinite(v)}
    if not finite:
        return 1.0, nll
    return min(finite, key=lambda t: (finite[t], -t)), nll
