"""The chat's ranking (`candidates.fusion = "blend"`): hard constraints as a mask, then one weighted sum of signals
over every allowed item (docs/ARCHITECTURE.md §2, step 3).

    score(item) = w_collaborative · z(collaborative) + w_genre_collaborative · z(genre_collaborative)
                  + w_semantic · z(semantic) + w_mood · mood + w_popularity · z(log popularity) + w_anchor · anchor

- collaborative: `marquee eval`'s best ranker (SASRec + EASE) on the known user's history, oldest first, with the
  session's likes appended (the likes alone without a known user); dislikes push their neighbours down
  (retrieval/candidates/collaborative.py);
- genre_collaborative: the same model on the request's sub-history: the history (and likes) having one of the
  genres the request names (wanted or mood), oldest first: what this user's own taste in that genre points to,
  which the whole history dilutes. Absent when the request names no genre or no history item has one;
- semantic: cosine of the request's OWN words (`CandidateRequest.content`: what the parser did not understand as
  genres, years, counts, titles or chit-chat) to the item's text;
- mood: 1 when the item has one of the request's mood genres (a soft wish, never a filter);
- popularity: log(1 + interactions), the cold-start prior: it joins only when the request has no collaborative
  evidence (no known user, no liked title), as in the RRF fusion; for a known user any popularity weight lowered
  the validation NDCG@5 (configs/tune-blend.md);
- anchor: the share of the liked titles the item shares a genre with.
`z` standardises over the allowed items, so the weights mean the same whatever the model's scale and however
narrow the constraints. A signal the request does not carry adds nothing; with no taste signal at all (no user,
no likes, no words, no mood) popularity decides. The weights live in `candidates.blend` (retrieval/config).

Computing the signals (`Signals`) is separate from weighting them (`blend`), so tuning can compute each request's
signals once and try many weights (scripts/tune_blend.py).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

SIGNALS = ("collaborative", "genre_collaborative", "semantic", "mood", "popularity", "anchor")
STANDARDISED = frozenset({"collaborative", "genre_collaborative", "semantic", "popularity"})  # the others are shares in [0, 1]
COLD_START = "popularity"  # the cold-start prior: joins only without collaborative evidence, decides without taste
COLLABORATIVE = "collaborative"


@dataclass
class Signals:
    """One request's raw signals over the catalog (catalog order) and the hard-constraint mask."""

    allowed: np.ndarray  # bool per item: what the request may return
    values: dict[str, np.ndarray] = field(default_factory=dict)  # only the signals the request carries

    @property
    def taste(self) -> bool:
        """Does the request say anything about taste (beyond what is popular)?"""
        return any(name != COLD_START for name in self.values)


def standardised(values: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """z-scores over the allowed items (0 for a constant signal); other items get 0 too."""
    out = np.zeros(values.shape, dtype=np.float64)
    if not allowed.any():
        return out
    x = values[allowed].astype(np.float64)
    spread = float(x.std())
    if spread > 0 and np.isfinite(spread):
        out[allowed] = (x - x.mean()) / spread
    return out


def blend(signals: Signals, weights: Mapping[str, float]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per item: the blended score (−inf where not allowed) and each weighted signal's contribution to it
    (what `Candidate.sources` reports). Signals with weight 0 contribute nothing and are not reported."""
    unknown = set(weights) - set(SIGNALS)
    if unknown:
        raise ValueError(f"unknown blend signal(s) {sorted(unknown)}; known: {', '.join(SIGNALS)}")
    parts: dict[str, np.ndarray] = {}
    for name, raw in signals.values.items():
        weight = float(weights.get(name, 0.0))
        if name == COLD_START and COLLABORATIVE in signals.values:
            continue  # the collaborative scores already carry popularity (configs/tune-blend.md)
        if weight:
            value = standardised(raw, signals.allowed) if name in STANDARDISED else np.asarray(raw, np.float64)
            parts[name] = weight * value
    if not any(name != COLD_START for name in parts) and COLD_START in signals.values:
        # no taste signal counts: the cold-start prior decides (at its weight, or alone when that is 0)
        parts = {COLD_START: standardised(signals.values[COLD_START], signals.allowed)
                 * (float(weights.get(COLD_START, 0.0)) or 1.0)}
    total = np.zeros(signals.allowed.shape, dtype=np.float64)
    for value in parts.values():
        total += value
    total[~signals.allowed] = -np.inf
    return total, parts


def genre_share(flags: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per item: the share of the items `rows` it shares at least one genre with (`flags`: items × genres)."""
    if rows.size == 0:
        return np.zeros(flags.shape[0])
    shared = flags.astype(np.float32) @ flags[rows].T.astype(np.float32) > 0
    return shared.mean(axis=1)
