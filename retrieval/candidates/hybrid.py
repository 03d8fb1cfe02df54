"""HybridRetriever: the chat's candidates from semantic, collaborative and popularity signals, re-ordered for
diversity, with the hard constraints enforced as filters on every path.

Two fusions (`candidates.fusion`): `blend` (default) scores every allowed item by a weighted sum of standardised
signals (retrieval/candidates/blend.py); `rrf` fuses the generators' top lists by weighted reciprocal rank (the
chat's ranking before issue #12, kept as a configuration to compare with).

It is also a `Recommender`, so the evaluation harness measures "our retriever" exactly like the
baselines (`fit` on the training log, `score` over all items or given candidates).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from types import MappingProxyType

import numpy as np

from retrieval.candidates.base import Candidate, CandidateGenerator, CandidateRequest
from retrieval.candidates.blend import Signals, blend, genre_share
from retrieval.candidates.collaborative import CollaborativeGenerator
from retrieval.candidates.diversity import long_tail_rerank, mmr
from retrieval.candidates.filtering import CatalogArrays, effective_constraints
from retrieval.candidates.fusion import reciprocal_rank_fusion
from retrieval.candidates.popularity import PopularityGenerator
from retrieval.candidates.semantic import SemanticGenerator
from retrieval.catalog.schema import Catalog, Interactions
from retrieval.config import CandidateConfig
from retrieval.recommender import Recommender, UserContext, register, take_candidates

EmbeddingLookup = Callable[[Sequence[str]], np.ndarray]  # item ids -> L2-normalised rows
MMR_POOL_FACTOR = 3  # MMR / the long-tail knob choose k items out of the best MMR_POOL_FACTOR·k candidates
SOURCE_DEPTH_FACTOR, MIN_SOURCE_DEPTH = 3, 30  # per-generator depth: max(3k, 30), capped by config
BACKFILL_WEIGHT = 1e-4  # RRF weight of popular items that only complete a short list


@register("hybrid")
class HybridRetriever(CandidateGenerator, Recommender):
    """Compose generators; `generate(request, k)` returns ≤ k distinct, constraint-satisfying candidates."""

    name = "hybrid"

    def __init__(self, catalog: Catalog, config: CandidateConfig | None = None,
                 semantic: SemanticGenerator | None = None,
                 collaborative: CollaborativeGenerator | None = None,
                 popularity: PopularityGenerator | None = None,
                 embeddings: EmbeddingLookup | None = None,
                 arrays: CatalogArrays | None = None):
        self.catalog = catalog
        # re-validated: `model_copy(update=...)` skips pydantic's checks (ranges, known weight names)
        self.config = CandidateConfig.model_validate((config or CandidateConfig()).model_dump())
        self.arrays = arrays or CatalogArrays(catalog)
        self.semantic = semantic
        self.collaborative = collaborative
        self.popularity = popularity or PopularityGenerator(self.arrays)
        self.embeddings = embeddings
        self.n_items = len(catalog)

    # --- candidate generation -------------------------------------------------------------------
    def resolve(self, request: CandidateRequest) -> CandidateRequest:
        """Expand a known user id into its logged history, so every generator (and the exclusion of
        already-seen items) sees it."""
        if self.collaborative is None or not self.collaborative.knows_user(request.user_id):
            return request
        logged = [self.catalog.at(i).item_id for i in self.collaborative.histories.of(request.user_id)]
        return replace(request, history=tuple(dict.fromkeys((*logged, *request.history))))

    def source_lists(self, request: CandidateRequest, k: int) -> tuple[dict[str, list[Candidate]], dict[str, float]]:
        """Each generator's ranked list and its RRF weight for this request.

        - `weights.semantic` weighs a text query; without one, the "more like these" search (seed items'
          centroid) is a weaker signal and gets `seed_semantic_weight`.
        - popularity is the cold-start prior: it joins only when there is no collaborative evidence
          (collaborative scores already carry popularity; adding it again lowered validation Recall@20
          from .285 to .265 on ML-100k), and decides alone when nothing else has anything to say.
        """
        cfg = self.config
        has_text = bool(request.query.strip())
        weights = {"semantic": cfg.weights.get("semantic", 1.0) if has_text else cfg.seed_semantic_weight,
                   "collaborative": cfg.weights.get("collaborative", 1.0),
                   "popularity": cfg.weights.get("popularity", 1.0)}
        # Each generator is asked for enough to fill k after fusion, up to its configured depth: deeper
        # ranks barely move the fused top k, and a deep semantic fetch is the costliest step.
        depth = max(SOURCE_DEPTH_FACTOR * k, MIN_SOURCE_DEPTH)
        lists: dict[str, list[Candidate]] = {}
        if self.semantic is not None and weights["semantic"] > 0:
            lists["semantic"] = self.semantic.generate(request, min(cfg.semantic_k, depth))
        if self.collaborative is not None and weights["collaborative"] > 0:
            lists["collaborative"] = self.collaborative.generate(request, min(cfg.collaborative_k, depth))
        if not lists.get("collaborative") and (weights["popularity"] > 0 or not any(lists.values())):
            lists["popularity"] = self.popularity.generate(request, depth)
            if not any(v for name, v in lists.items() if name != "popularity"):
                weights["popularity"] = 1.0  # cold start: popularity decides alone
        return lists, weights

    def generate(self, request: CandidateRequest, k: int | None = None) -> list[Candidate]:
        k = self.config.count if k is None else k
        if k <= 0:
            raise ValueError(f"the number of candidates must be ≥ 1, got {k}")
        request = self.resolve(request)
        constraints = effective_constraints(request)
        ranked = self._blended(request, k) if self.config.fusion == "blend" else self._fused(request, k)
        # Hard constraints are re-checked on the ranked list: a generator bug can never leak an item.
        ranked = [c for c in ranked if c.item.item_id in self.catalog and constraints.allows(c.item)]
        ranked = long_tail_rerank(ranked, self.config.long_tail)
        if self.config.mmr_lambda < 1.0 and self.embeddings is not None and len(ranked) > 1:
            pool = ranked[:MMR_POOL_FACTOR * k]
            return mmr(pool, self.embeddings([c.item.item_id for c in pool]), k, self.config.mmr_lambda)
        return ranked[:k]

    # --- fusion "blend": every allowed item, one weighted sum of signals ---------------------------------
    def signals(self, request: CandidateRequest, constrained: bool = True) -> Signals:
        """The request's raw signals over the catalog (`retrieval.candidates.blend`). `constrained=False` allows
        every item (the evaluation's full ranking applies its own exclusions)."""
        request = self.resolve(request)
        facts = self.arrays.facts
        constraints = effective_constraints(request)
        allowed = facts.mask(constraints) if constrained else np.ones(self.n_items, dtype=bool)
        values: dict[str, np.ndarray] = {"popularity": self.popularity.scores}
        if self.collaborative is not None:
            collaborative = self.collaborative.scores(request)
            if collaborative is not None:
                values["collaborative"] = collaborative
            in_genre_weight = self.config.blend.genre_collaborative  # a second model pass: only when it counts
            genres = (constraints.include_genres | request.mood_genres) if in_genre_weight else set()
            if genres:
                in_genre = self.collaborative.scores(request, within=facts.has_any(genres))
                if in_genre is not None:
                    values["genre_collaborative"] = in_genre
        if self.semantic is not None and request.content:
            semantic = self.semantic.similarities(request.content)
            if semantic is not None:
                values["semantic"] = semantic
        if request.mood_genres:
            values["mood"] = facts.has_any(request.mood_genres).astype(np.float64)
        liked = self.arrays.indices(request.liked)
        if liked.size:
            values["anchor"] = genre_share(facts.flags, liked)
        return Signals(allowed=allowed, values=values)

    def _blended(self, request: CandidateRequest, k: int) -> list[Candidate]:
        total, parts = blend(self.signals(request), self.config.blend.model_dump())
        depth = MMR_POOL_FACTOR * k if self.config.mmr_lambda < 1.0 or self.config.long_tail > 0 else k
        return [Candidate(item=self.catalog.at(i), score=score,
                          sources=MappingProxyType({name: float(part[i]) for name, part in parts.items()}))
                for i, score in self.arrays.top(total, np.isfinite(total), depth)]

    # --- fusion "rrf": the generators' top lists by reciprocal rank -------------------------------------
    def _fused(self, request: CandidateRequest, k: int) -> list[Candidate]:
        lists, weights = self.source_lists(request, k)
        fused = reciprocal_rank_fusion(lists, weights, self.config.rrf_k)
        if len(fused) < MMR_POOL_FACTOR * k and "popularity" not in lists:
            # backfill: when the evidence runs out, popular allowed items complete the list (a tiny
            # weight keeps them below every evidenced item)
            lists["popularity"] = self.popularity.generate(request, MMR_POOL_FACTOR * k + len(fused))
            fused = reciprocal_rank_fusion(lists, {**weights, "popularity": BACKFILL_WEIGHT}, self.config.rrf_k)
        return fused

    # --- Recommender interface ------------------------------------------------------------------
    def fit(self, train: Interactions, catalog: Catalog) -> "HybridRetriever":
        """Refit the log-based parts (collaborative models, popularity counts) on a training log."""
        if len(catalog) != len(self.catalog):
            raise ValueError("HybridRetriever.fit: the catalog differs from the one it was built for")
        for generator in (self.semantic, self.collaborative, self.popularity):
            if generator is not None:
                generator.fit(train, catalog)
        self.n_items = len(catalog)
        return self

    def request_for(self, user: UserContext) -> CandidateRequest:
        ids = self.catalog.at
        return CandidateRequest(query=user.query, history=tuple(ids(i).item_id for i in user.history),
                                disliked=tuple(ids(i).item_id for i in user.disliked))

    def score(self, users: Sequence[UserContext], candidates: np.ndarray | None = None) -> np.ndarray:
        """blend (without diversity knobs): the blended score of every item (the evaluation excludes the history
        itself). Otherwise the retrieved list decides, re-ordered by MMR / the long-tail knob as the chat's is:
        retrieved items score in (1, 2] by their rank; all others keep the popularity order in [0, 1)."""
        if self.config.fusion == "blend" and self.config.mmr_lambda >= 1.0 and self.config.long_tail <= 0:
            weights = self.config.blend.model_dump()
            out = np.stack([blend(self.signals(self.request_for(user), constrained=False), weights)[0]
                            for user in users]) if users else np.zeros((0, self.n_items))
            return take_candidates(out.astype(np.float32), candidates)
        depth = max(self.config.count, self.config.semantic_k)
        prior = self.popularity.scores / (self.popularity.scores.max() + 1.0)
        out = np.tile(prior.astype(np.float32), (len(users), 1))
        for row, user in enumerate(users):
            retrieved = self.generate(self.request_for(user), depth)
            for rank, cand in enumerate(retrieved):
                out[row, self.catalog.index_of(cand.item.item_id)] = 2.0 - rank / max(len(retrieved), 1)
        return take_candidates(out, candidates)
