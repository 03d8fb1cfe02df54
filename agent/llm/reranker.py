"""LLM reranker: ONE forward pass scores up to 20 candidates, with any registered scorer (`agent.llm.scorers`:
"listwise" label tokens, "segments" Yes/No per candidate, …); an adapter records the scorer it was trained for.

How the two scores combine is `agent.llm.fusion`: for adapters trained since issue #14 `z(retriever) + g × z(LLM)`
(optionally only where the retriever's margin is small), for older ones `minmax(retriever) + w × LLM log-prob`.
A weight of 0 gives back the retriever's order exactly (and skips the LLM), so an untuned model can be switched off
without touching the pipeline; an adapter records its fusion, tuned weight and gate in `marquee.json`.

The class is also a `retrieval.recommender.Recommender`, so the evaluation harness ranks it like any baseline:
it reranks the top candidates of a base ranker (retriever) and keeps the base order below them.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from agent.llm.fusion import Fusion, minmax  # noqa: F401  (minmax: re-exported for callers)
from agent.llm.prompting import UserSummary
from agent.llm.scorers import Scorer, create_scorer
from retrieval.candidates.base import Candidate
from retrieval.catalog.schema import Catalog, Interactions
from retrieval.recommender import Recommender, UserContext

log = logging.getLogger(__name__)

DEFAULT_SCORER = "listwise"  # when neither the config nor an adapter names one
DEFAULT_FUSION_WEIGHT = 0.1  # used when neither the config nor an adapter sets one (zero-shot: a gentle nudge)


def fuse(retriever_scores: np.ndarray, llm_logprobs: np.ndarray, weight: float) -> np.ndarray:
    """The legacy min-max fusion (`agent.llm.fusion`, kind "minmax"): minmax(retriever) + w × LLM."""
    return Fusion("minmax", weight)(retriever_scores, llm_logprobs)


@dataclass(frozen=True)
class Reranked:
    candidate: Candidate
    score: float  # fused
    llm_score: float  # calibrated log-prob of this candidate (a distribution over the list); NaN = not computed
    retriever_score: float  # the retriever's score, normalised as the fusion does (min-max or z-score)


class LLMReranker(Recommender):
    name = "llm-rerank"

    def __init__(self, backend, weight: float | None = None, permutations: int = 1, calibrate: bool = True,
                 max_candidates: int = 20, history_items: int = 10, base: Recommender | None = None,
                 catalog: Catalog | None = None, seed: int = 0, adapter_meta: dict | None = None,
                 scorer: str | None = None, gate: bool = True):
        """`scorer`: a registered scorer name; unset = the adapter's (marquee.json), else "listwise".
        `weight` overrides the adapter's fusion weight; `gate=False` drops its margin gate (agent.llm.fusion)."""
        meta = adapter_meta or {}
        self.backend = backend
        # an adapter is trained for one scorer; unknown names fail here, listing the registered ones
        self.scorer: Scorer = create_scorer(scorer or meta.get("scorer", DEFAULT_SCORER), backend.tokenizer,
                                            backend=backend, max_candidates=max_candidates,
                                            history_items=history_items, permutations=permutations,
                                            calibrate=calibrate, seed=seed)
        self.fusion = Fusion.from_meta(meta, weight=weight, gate=gate, default_weight=DEFAULT_FUSION_WEIGHT)
        self.max_candidates = max_candidates
        self.history_items = history_items
        self.lists_seen = self.lists_scored = 0  # coverage: lists the LLM acted on (margin gate, weight 0)
        self.base = base
        self.catalog = catalog

    @classmethod
    def from_config(cls, llm_cfg, home, base: Recommender | None = None, catalog: Catalog | None = None,
                    adapter: str | None = None) -> "LLMReranker":
        """Local model (shared, loaded once) or, when `llm_cfg.endpoint` is set, an OpenAI-compatible server."""
        from agent.llm.backend import LocalBackend
        from agent.llm.loading import load_model

        if llm_cfg.endpoint:
            from agent.llm.remote import RemoteBackend

            backend, meta = RemoteBackend.from_config(llm_cfg, home), {}
        else:
            llm = load_model(llm_cfg, home, adapter=adapter)
            backend, meta = LocalBackend(llm, batch_size=llm_cfg.batch_size), llm.adapter_meta
        return cls(backend, weight=llm_cfg.fusion_weight, permutations=llm_cfg.permutations,
                   calibrate=llm_cfg.calibrate, max_candidates=llm_cfg.max_candidates,
                   history_items=llm_cfg.history_items, base=base, catalog=catalog, adapter_meta=meta,
                   scorer=llm_cfg.scorer, gate=llm_cfg.gate)

    # -- scoring ---------------------------------------------------------------------------------------
    def llm_scores(self, users: Sequence[UserSummary], candidate_titles: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Per user, log-probs over exactly its candidates (in the caller's order); one batched pass for all."""
        if len(users) != len(candidate_titles):
            raise ValueError("one candidate list per user")
        for titles in candidate_titles:
            if not 0 < len(titles) <= self.max_candidates:
                raise ValueError(f"each list needs 1..{self.max_candidates} candidates, got {len(titles)}")
        return self.scorer.scores(users, candidate_titles)

    @property
    def weight(self) -> float:
        return self.fusion.weight

    def retriever_part(self, scores: np.ndarray) -> np.ndarray:
        """The retriever's scores as the fusion normalises them (its order alone: weight 0)."""
        return replace(self.fusion, weight=0.0)(scores, None)

    def _llm_where_used(self, users: Sequence[UserSummary], titles: Sequence[Sequence[str]],
                        retriever_scores: Sequence[np.ndarray]) -> list[np.ndarray]:
        """LLM scores for the lists the fusion lets it act on; NaN without a forward pass for the others (w = 0,
        or the retriever is confident enough under the margin gate): their fused order is the retriever's."""
        out = [np.full(len(t), np.nan) for t in titles]
        used = [i for i, s in enumerate(retriever_scores) if self.fusion.uses_llm(np.asarray(s, dtype=np.float64))]
        self.lists_seen += len(titles)
        self.lists_scored += len(used)
        if used:
            for i, lp in zip(used, self.llm_scores([users[i] for i in used], [titles[i] for i in used])):
                out[i] = lp
        return out

    def rerank_many(self, users: Sequence[UserSummary], lists: Sequence[Sequence[Candidate]]) -> list[list[Reranked]]:
        """Rerank each user's retrieved candidates (best first in, best first out); beyond max_candidates
        the retriever's tail follows unchanged."""
        heads = [list(c)[: self.max_candidates] for c in lists]
        todo = [i for i, h in enumerate(heads) if h]
        retriever = {i: np.array([c.score for c in heads[i]], dtype=np.float64) for i in todo}
        llm = self._llm_where_used([users[i] for i in todo], [[c.item.label for c in heads[i]] for i in todo],
                                   [retriever[i] for i in todo])
        out: list[list[Reranked]] = [[] for _ in lists]
        for i, lp in zip(todo, llm):
            fused = self.fusion(retriever[i], lp)
            shown = self.retriever_part(retriever[i])
            order = sorted(range(len(heads[i])), key=lambda j: (-fused[j], j))  # ties keep retriever order
            out[i] = [Reranked(heads[i][j], float(fused[j]), float(lp[j]), float(shown[j])) for j in order]
            floor = min(r.score for r in out[i]) if out[i] else 0.0
            out[i] += [Reranked(c, floor - 1 - k, float("nan"), float("nan"))
                       for k, c in enumerate(list(lists[i])[self.max_candidates:])]
        return out

    def rerank(self, user: UserSummary, candidates: Sequence[Candidate]) -> list[Reranked]:
        return self.rerank_many([user], [candidates])[0]

    # -- Recommender interface (evaluation harness) ------------------------------------------------------
    def fit(self, train: Interactions, catalog: Catalog) -> "LLMReranker":
        super().fit(train, catalog)
        self.catalog = catalog
        if self.base is not None and not hasattr(self.base, "n_items"):
            self.base.fit(train, catalog)
        return self

    def summary(self, user: UserContext) -> UserSummary:
        """Catalog indices → `Title (year)`: recent history, likes / dislikes, the stated request."""
        label = lambda idx: self.catalog.at(int(idx)).label  # noqa: E731
        liked = tuple(label(i) for i in user.extra.get("liked", ()))
        return UserSummary(liked=liked, disliked=tuple(label(i) for i in user.disliked),
                           recent=tuple(label(i) for i in user.history[-self.history_items:]), request=user.query)

    def score(self, users: Sequence[UserContext], candidates: np.ndarray | None = None) -> np.ndarray:
        """Base scores with its top `max_candidates` (history excluded) reranked and lifted above the rest."""
        if self.base is None or self.catalog is None:
            raise RuntimeError("LLMReranker.score needs a base ranker and a catalog: pass base=… and call fit()")
        base = np.asarray(self.base.score(users, candidates), dtype=np.float64)
        ids = (np.tile(np.arange(base.shape[1]), (len(users), 1)) if candidates is None else np.asarray(candidates))
        heads = []
        for row, user in enumerate(users):
            masked = np.where(np.isin(ids[row], user.history), -np.inf, base[row]) if candidates is None else base[row]
            top = np.lexsort((ids[row], -masked))[: self.max_candidates]
            heads.append(top[np.isfinite(masked[top])])
        keep = [r for r, h in enumerate(heads) if len(h)]
        llm = self._llm_where_used([self.summary(users[r]) for r in keep],
                                   [[self.catalog.at(int(ids[r, j])).label for j in heads[r]] for r in keep],
                                   [base[r, heads[r]] for r in keep])
        out = base.copy()
        for r, lp in zip(keep, llm):
            fused = self.fusion(base[r, heads[r]], lp)
            rest = np.delete(out[r], heads[r])
            ceiling = rest[np.isfinite(rest)].max() if np.isfinite(rest).any() else 0.0
            out[r, heads[r]] = ceiling + 1.0 + fused - fused.min()
        return out

    def run_stats(self) -> dict[str, Any]:
        """What scoring so far measured: the share of lists the LLM acted on (the margin gate's coverage)."""
        return {"llm_coverage": self.lists_scored / self.lists_seen if self.lists_seen else None,
                "lists": self.lists_seen}

    def describe(self) -> dict[str, Any]:
        return {"model": self.backend.model_id, **self.scorer.describe(), **self.fusion.describe()}
