"""SASRec + EASE: the per-user z-scored blend of the two (retrieval/models/blend.py) as one named recommender.

The strongest classical ranker on ML-100k; `create("sasrec+ease")` gives evaluation and serving the same model,
its members built with their own tuned defaults.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from retrieval.catalog.schema import Catalog, Interactions
from retrieval.models.blend import ScoreBlend
from retrieval.models.ease import EASE
from retrieval.models.sasrec import SASRec
from retrieval.recommender import Recommender, register


@register("sasrec+ease")
class SASRecEASE(ScoreBlend):
    sequential = True
    # Validation NDCG@10 (all users) by EASE weight: 0.1 → .1358, 0.2 → .1414, 0.3 → .1392, 0.6 → .1316,
    # 1.0 → .1178 (SASRec alone .1136): `marquee eval --config configs/tune-sasrec-ease.toml`.
    def __init__(self, ease_weight: float = 0.2, seed: int = 0, home: str | Path | None = None,
                 threads: int | None = 1):
        """`seed`, `home` (SASRec's weight cache) and `threads` go to the SASRec member."""
        self.sasrec = SASRec(seed=seed, home=home, threads=threads)
        self.ease = EASE()
        self.ease_weight = float(ease_weight)
        super().__init__([(self.sasrec, 1.0), (self.ease, self.ease_weight)])

    def fit(self, train: Interactions, catalog: Catalog,
            validation: Sequence[tuple[Sequence[int], int]] | None = None,
            progress: Callable[[dict], None] | None = None) -> "SASRecEASE":
        """`validation` / `progress`: SASRec's early-stopping pairs and epoch callback (see SASRec.fit)."""
        Recommender.fit(self, train, catalog)
        self.sasrec.fit(train, catalog, validation=validation, progress=progress)
        self.ease.fit(train, catalog)
        return self

    def get_params(self) -> dict:
        return {"ease_weight": self.ease_weight, "sasrec": self.sasrec.get_params(), "ease": self.ease.get_params()}
