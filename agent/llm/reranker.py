"""LLM reranker: ONE forward pass scores up to 20 candidates, with one of two scorers (`SCORERS`).

- "listwise" (LlamaRec-style verbalizer): the log-softmax over the candidates' label tokens, corrected for the
  model's label-position prior (content-free prompt) and optionally averaged over k candidate permutations.
- "segments" (TALLRec-style Yes/No per candidate, `agent.llm.segments`): the user context once, every candidate
  as its own masked segment; log-softmax over the candidates' Yes−No logits. Order-free: no calibration needed.

score = normalised retriever score + w × LLM log-prob. w = 0 gives back the retriever's order exactly, so an untuned model can
be switched off without touching the pipeline; the shipped adapter sets its tuned w in `marquee.json`.

The class is also a `retrieval.recommender.Recommender`, so the evaluation harness ranks it like any baseline:
it reranks the top candidates of a base ranker (retriever) and keeps the base order below them.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.llm.prompting import LabelSet, RerankPrompt, UserSummary, build_rerank_prompt, content_free_prompt
from retrieval.candidates.base import Candidate
from retrieval.catalog.schema import Catalog, Interactions
from retrieval.recommender import Recommender, UserContext

log = logging.getLogger(__name__)

SCORERS = ("listwise", "segments")
DEFAULT_FUSION_WEIGHT = 0.1  # used when neither the config nor an adapter sets one (zero-shot: a gentle nudge)


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    m = x.max()
    return x - m - np.log(np.exp(x - m).sum())


def minmax(x: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a constant list maps to zeros (order-preserving, so w = 0 keeps the retriever order)."""
    x = np.asarray(x, dtype=np.float64)
    span = x.max() - x.min()
    return np.zeros_like(x) if span <= 0 else (x - x.min()) / span


def fuse(retriever_scores: np.ndarray, llm_logprobs: np.ndarray, weight: float) -> np.ndarray:
    """minmax(retriever) + w × LLM; w = 0 is exactly the retriever (LLM scores may then be NaN: never computed)."""
    base = minmax(retriever_scores)
    return base if weight == 0 else base + weight * np.asarray(llm_logprobs, dtype=np.float64)


@dataclass(frozen=True)
class Reranked:
    candidate: Candidate
    score: float  # fused
    llm_score: float  # calibrated log-prob of this candidate (a distribution over the list)
    retriever_score: float  # min-max normalised retriever score


class ListwiseReranker(Recommender):
    name = "llm-rerank"

    def __init__(self, backend, weight: float | None = None, permutations: int = 1, calibrate: bool = True,
                 max_candidates: int = 20, history_items: int = 10, base: Recommender | None = None,
                 catalog: Catalog | None = None, seed: int = 0, adapter_meta: dict | None = None,
                 scorer: str | None = None):
        if permutations < 1:
            raise ValueError("permutations must be ≥ 1")
        meta = adapter_meta or {}
        self.scorer = scorer or meta.get("scorer", "listwise")  # an adapter is trained for one scorer
        if self.scorer not in SCORERS:
            raise ValueError(f"unknown scorer {self.scorer!r}; known: {', '.join(SCORERS)}")
        if self.scorer == "segments" and not hasattr(backend, "llm"):
            raise ValueError("the segments scorer needs the model in this process (it builds block attention "
                             "masks); with an OpenAI-compatible endpoint set [llm] scorer = \"listwise\"")
        self.backend = backend
        self.labels = LabelSet.for_tokenizer(backend.tokenizer, max_candidates)  # raises LabelError
        self.weight = float(weight if weight is not None else meta.get("fusion_weight", DEFAULT_FUSION_WEIGHT))
        self.permutations = permutations
        self.calibrate = calibrate
        self.max_candidates = max_candidates
        self.history_items = history_items
        self.base = base
        self.catalog = catalog
        self.seed = seed
        self._priors: dict[int, np.ndarray] = {}

    @classmethod
    def from_config(cls, llm_cfg, home, base: Recommender | None = None, catalog: Catalog | None = None,
                    adapter: str | None = None) -> "ListwiseReranker":
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
                   scorer=llm_cfg.scorer)

    # -- prompts ---------------------------------------------------------------------------------------
    def orders(self, n: int) -> list[tuple[int, ...]]:
        """Identity, reversed, then seeded shuffles: k permutations of n candidates."""
        out = [tuple(range(n))]
        if self.permutations > 1:
            out.append(tuple(reversed(range(n))))
        rng = np.random.default_rng(self.seed + n)
        while len(out) < self.permutations:
            out.append(tuple(int(i) for i in rng.permutation(n)))
        return out

    def prompts_for(self, user: UserSummary, titles: Sequence[str]) -> list[RerankPrompt]:
        return [build_rerank_prompt(self.backend.tokenizer, user, titles, labels=self.labels, order=order,
                                    history_items=self.history_items) for order in self.orders(len(titles))]

    def prior(self, n: int) -> np.ndarray:
        """Label-position prior: restricted log-softmax of the content-free prompt (cached per list length)."""
        if n not in self._priors:
            cf = content_free_prompt(self.backend.tokenizer, n, labels=self.labels)
            self._priors[n] = log_softmax(self.backend.label_logprobs([cf])[0])
        return self._priors[n]

    # -- scoring ---------------------------------------------------------------------------------------
    def llm_scores(self, users: Sequence[UserSummary], candidate_titles: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Per user, log-probs over exactly its candidates (in the caller's order); one batched pass for all."""
        if len(users) != len(candidate_titles):
            raise ValueError("one candidate list per user")
        for titles in candidate_titles:
            if not 0 < len(titles) <= self.max_candidates:
                raise ValueError(f"each list needs 1..{self.max_candidates} candidates, got {len(titles)}")
        if self.scorer == "segments":
            from agent.llm.segments import build_segment_prompt, score_segments

            prompts = [build_segment_prompt(self.backend.tokenizer, u, t, self.history_items)
                       for u, t in zip(users, candidate_titles)]
            return [log_softmax(s) for s in score_segments(self.backend, prompts)]
        batch: list[RerankPrompt] = []
        spans = []
        for user, titles in zip(users, candidate_titles):
            start = len(batch)
            batch.extend(self.prompts_for(user, titles))
            spans.append((start, len(batch)))
        raw = self.backend.label_logprobs(batch)
        results = []
        for (start, stop), titles in zip(spans, candidate_titles):
            n = len(titles)
            total = np.zeros(n)
            for prompt, lp in zip(batch[start:stop], raw[start:stop]):
                by_position = log_softmax(lp)
                if self.calibrate:
                    by_position = by_position - self.prior(n)
                total[list(prompt.order)] += by_position  # position j holds candidate order[j]
            results.append(log_softmax(total / (stop - start)))
        return results

    def _llm_or_skip(self, users: Sequence[UserSummary], titles: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """LLM scores, or NaN without a forward pass when w = 0 (the fused order is the retriever's anyway)."""
        if self.weight == 0:
            return [np.full(len(t), np.nan) for t in titles]
        return self.llm_scores(users, titles)

    def rerank_many(self, users: Sequence[UserSummary], lists: Sequence[Sequence[Candidate]]) -> list[list[Reranked]]:
        """Rerank each user's retrieved candidates (best first in, best first out); beyond max_candidates
        the retriever's tail follows unchanged."""
        heads = [list(c)[: self.max_candidates] for c in lists]
        todo = [i for i, h in enumerate(heads) if h]
        llm = self._llm_or_skip([users[i] for i in todo], [[c.item.label for c in heads[i]] for i in todo])
        out: list[list[Reranked]] = [[] for _ in lists]
        for i, lp in zip(todo, llm):
            retr = minmax(np.array([c.score for c in heads[i]]))
            fused = retr if self.weight == 0 else retr + self.weight * lp  # = fuse(), minmax done once
            order = sorted(range(len(heads[i])), key=lambda j: (-fused[j], j))  # ties keep retriever order
            out[i] = [Reranked(heads[i][j], float(fused[j]), float(lp[j]), float(retr[j])) for j in order]
            floor = min(r.score for r in out[i]) if out[i] else 0.0
            out[i] += [Reranked(c, floor - 1 - k, float("nan"), float("nan"))
                       for k, c in enumerate(list(lists[i])[self.max_candidates:])]
        return out

    def rerank(self, user: UserSummary, candidates: Sequence[Candidate]) -> list[Reranked]:
        return self.rerank_many([user], [candidates])[0]

    # -- Recommender interface (evaluation harness) ------------------------------------------------------
    def fit(self, train: Interactions, catalog: Catalog) -> "ListwiseReranker":
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
            raise RuntimeError("ListwiseReranker.score needs a base ranker and a catalog: pass base=… and call fit()")
        base = np.asarray(self.base.score(users, candidates), dtype=np.float64)
        ids = (np.tile(np.arange(base.shape[1]), (len(users), 1)) if candidates is None else np.asarray(candidates))
        heads = []
        for row, user in enumerate(users):
            masked = np.where(np.isin(ids[row], user.history), -np.inf, base[row]) if candidates is None else base[row]
            top = np.lexsort((ids[row], -masked))[: self.max_candidates]
            heads.append(top[np.isfinite(masked[top])])
        keep = [r for r, h in enumerate(heads) if len(h)]
        llm = self._llm_or_skip([self.summary(users[r]) for r in keep],
                              [[self.catalog.at(int(ids[r, j])).label for j in heads[r]] for r in keep])
        out = base.copy()
        for r, lp in zip(keep, llm):
            fused = fuse(base[r, heads[r]], lp, self.weight)
            rest = np.delete(out[r], heads[r])
            ceiling = rest[np.isfinite(rest)].max() if np.isfinite(rest).any() else 0.0
            out[r, heads[r]] = ceiling + 1.0 + fused - fused.min()
        return out

    def describe(self) -> dict[str, Any]:
        return {"model": self.backend.model_id, "scorer": self.scorer, "weight": self.weight,
                "permutations": self.permutations,
                "calibrate": self.calibrate, "labels": "".join(self.labels.labels)}
