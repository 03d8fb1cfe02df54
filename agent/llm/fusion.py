"""How the reranker combines the retriever's scores with the LLM's over one candidate list (fusion kinds).

- "residual" (adapters trained since issue #14): `z(retriever) + g × z(LLM)`, each z-scored over the list. With
  g = 0 it IS the retriever's order, so a g tuned on validation (grid containing 0) can never validate below the
  retriever: the LLM is a residual correction on top of the teacher, not a replacement.
  An optional margin gate lets the LLM act only on lists where the retriever is unsure: when the z-score gap
  between its best and its `gate_k`-th candidate is below `gate_margin`; elsewhere the retriever's order stands
  (and the LLM forward pass is skipped).
- "minmax" (older adapters; their marquee.json names no fusion): `minmax(retriever) + w × LLM log-prob`.

An adapter's marquee.json records its kind, weight and gate (`Fusion.from_meta`); `[llm] fusion_weight` and
`[llm] gate` override them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("residual", "minmax")
LEGACY_KIND = "minmax"  # what an adapter without a "fusion" entry in marquee.json was tuned for


def minmax(x: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a constant list maps to zeros (order-preserving, so w = 0 keeps the retriever order)."""
    x = np.asarray(x, dtype=np.float64)
    span = x.max() - x.min()
    return np.zeros_like(x) if span <= 0 else (x - x.min()) / span


def zscore(x: np.ndarray) -> np.ndarray:
    """Standardised over the list; a constant list maps to zeros."""
    x = np.asarray(x, dtype=np.float64)
    spread = x.std()
    return np.zeros_like(x) if spread <= 0 or not np.isfinite(spread) else (x - x.mean()) / spread


def margin(retriever_scores: np.ndarray, k: int) -> float:
    """The retriever's confidence in its head: z-score of its best minus its k-th best candidate (k ≥ 2)."""
    z = np.sort(zscore(retriever_scores))[::-1]
    return float(z[0] - z[min(k, len(z)) - 1]) if len(z) > 1 else float("inf")


@dataclass(frozen=True)
class Fusion:
    kind: str = "residual"
    weight: float = 0.0  # g (residual) or w (minmax); 0 = the retriever's order
    gate_margin: float | None = None  # residual only: the LLM acts where margin(retriever) < gate_margin
    gate_k: int = 10

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown fusion {self.kind!r}; known: {', '.join(KINDS)}")
        if self.weight < 0:
            raise ValueError(f"the fusion weight must be ≥ 0, got {self.weight}")
        if self.gate_k < 2:
            raise ValueError(f"gate_k must be ≥ 2, got {self.gate_k}")

    @classmethod
    def from_meta(cls, meta: dict, weight: float | None = None, gate: bool = True,
                  default_weight: float = 0.1) -> "Fusion":
        """The fusion an adapter's marquee.json records; `weight` (if given) overrides it, `gate=False` drops
        the margin gate. No adapter (zero-shot) or an older adapter: min-max fusion, as before."""
        kind = meta.get("fusion", LEGACY_KIND)
        w = weight if weight is not None else meta.get("fusion_weight", default_weight)
        margin_ = meta.get("gate_margin") if gate else None
        return cls(kind=kind, weight=float(w), gate_margin=None if margin_ is None else float(margin_),
                   gate_k=int(meta.get("gate_k", 10)))

    def uses_llm(self, retriever_scores: np.ndarray) -> bool:
        """Whether the LLM can change this list's order (else its forward pass can be skipped)."""
        if self.weight == 0:
            return False
        return self.gate_margin is None or margin(retriever_scores, self.gate_k) < self.gate_margin

    def __call__(self, retriever_scores: np.ndarray, llm_scores: np.ndarray | None) -> np.ndarray:
        """Fused scores of one list (higher = better). Lists the LLM does not act on (`uses_llm` False) come
        back in the retriever's order, and their `llm_scores` are never read (they may be None or NaN)."""
        if self.kind == "minmax":
            base = minmax(retriever_scores)
            return base if self.weight == 0 else base + self.weight * np.asarray(llm_scores, dtype=np.float64)
        base = zscore(retriever_scores)
        if not self.uses_llm(retriever_scores):
            return base
        return base + self.weight * zscore(llm_scores)

    def describe(self) -> dict:
        out = {"fusion": self.kind, "weight": self.weight}
        if self.gate_margin is not None:
            out.update(gate_margin=self.gate_margin, gate_k=self.gate_k)
        return out
