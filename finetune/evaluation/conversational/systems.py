"""The rows of the benchmark: what each system picks for each request (≤ `PICKS` catalog indices).

- A ranker row is a `marquee eval` ranker built by its registry entry (`finetune/evaluation/rankers.py`:
  the validation-tuned parameters, fitted on the train split; SASRec cached in MARQUEE_HOME). It scores
  the user's visible history once and ignores the request's words: it shows its top picks over all
  items minus that history, or, with `oracle`, only among the items that have the request's attributes
  (what a perfect parser on top of that model would reach).
- An agent row is `RecommenderAgent` as a user meets it (planner mode, the configured pipeline, with the
  row's settings overrides), built over a `RetrievalService` of the stage's visible log; each request is a fresh
  session of that known user.
"""
from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from finetune.evaluation.ranking import checked_scores
from finetune.evaluation.conversational.attributes import RequestAttributes
from retrieval.config.conversational import PICKS, SystemSpec
from finetune.evaluation.conversational.isolation import check_agent
from finetune.evaluation.conversational.requests import BenchRequest, BenchUser
from finetune.evaluation.rankers import BuildContext, entry
from retrieval.catalog.schema import Catalog, Interactions
from retrieval.ranking import NO_ITEM, top_k
from retrieval.recommender import Recommender, UserContext

Progress = Callable[[str, int, int], None]


class RankerRows:
    """Ranker systems: each model is built and scores every user once, shared by its plain and oracle rows."""

    def __init__(self, context: BuildContext, users: Sequence[BenchUser], log: Callable[[str], None] = print):
        self.context = context
        self.catalog: Catalog = context.dataset.catalog
        self.users = {u.user_id: u for u in users}
        self.log = log
        self._scores: dict[str, dict[str, np.ndarray]] = {}
        self._masks: dict[RequestAttributes, np.ndarray] = {}
        self.fit_seconds: dict[str, float] = {}  # per model: build + scoring every user (shared by its rows)
        self.turn_seconds: dict[str, float] = {}  # per row: picking for every request

    def model(self, name: str) -> Recommender:
        """The registry's ranker `name` with its validation-tuned defaults, fitted on the train split."""
        e = entry(name)
        return e.build(self.context, dict(e.defaults))

    def scores(self, name: str) -> dict[str, np.ndarray]:
        """user_id -> a score per catalog item, from the user's visible history."""
        if name not in self._scores:
            started = time.perf_counter()
            model = self.model(name)
            users = list(self.users.values())
            matrix = model.score([UserContext(history=u.history, user_id=u.user_id) for u in users])
            matrix = checked_scores(matrix, len(users), len(self.catalog), name)
            self._scores[name] = {u.user_id: row for u, row in zip(users, matrix)}
            self.fit_seconds[name] = round(time.perf_counter() - started, 2)
        return self._scores[name]

    def mask(self, attributes: RequestAttributes) -> np.ndarray:
        if attributes not in self._masks:
            self._masks[attributes] = attributes.mask(self.catalog)
        return self._masks[attributes]

    def picks(self, spec: SystemSpec, requests: Sequence[BenchRequest],
              progress: Progress | None = None) -> list[list[int]]:
        scores = self.scores(spec.ranker)
        out, started = [], time.perf_counter()
        for n, request in enumerate(requests, start=1):
            user = self.users[request.user_id]
            excluded = np.zeros(len(self.catalog), dtype=bool)
            excluded[list(user.history)] = True  # seen: the same rule as the chat's
            if spec.oracle:
                excluded |= ~self.mask(request.attributes)
            top = top_k(scores[request.user_id][None, :], PICKS, excluded[None, :])[0]
            out.append([int(i) for i in top if i != NO_ITEM])
            if progress:
                progress(spec.name, n, len(requests))
        self.turn_seconds[spec.name] = round(time.perf_counter() - started, 2)
        return out


def agent_settings(settings: Any, overrides: dict[str, dict[str, Any]]) -> Any:
    """`settings` with a system's section overrides merged in and validated."""
    update = {}
    for section, values in overrides.items():
        current = getattr(settings, section)
        update[section] = type(current).model_validate({**current.model_dump(), **values})
    return settings.model_copy(update=update) if update else settings


class AgentRows:
    """Chat systems: one agent per row over one shared content index; sessions in a throw-away SQLite file."""

    def __init__(self, settings: Any, service, visible: Interactions, split, users: Sequence[BenchUser],
                 stage: str = "test", log: Callable[[str], None] = print):
        self.settings = settings
        self.service = service  # over the full catalog: owns the (shared, content-only) index
        self.visible = visible
        self.split = split
        self.users = list(users)
        self.stage = stage
        self.log = log
        self._folder = tempfile.TemporaryDirectory(prefix="marquee-conversational-")
        self.build_seconds: dict[str, float] = {}
        self.turn_seconds: dict[str, float] = {}
        self.empty_replies: dict[str, int] = {}

    def agent(self, spec: SystemSpec):
        from agent.core import RecommenderAgent
        from agent.storage import Storage

        started = time.perf_counter()
        settings = agent_settings(self.settings, spec.settings)
        if settings.agent.mode != "planner":
            raise ValueError(f"system {spec.name!r}: the benchmark runs the planner (agent.mode = 'planner')")
        service = self.service.with_interactions(self.visible, candidates=settings.candidates)
        storage = Storage(Path(self._folder.name) / f"{len(self.build_seconds)}.db")
        agent = RecommenderAgent(settings, service=service, storage=storage)
        check_agent(agent, self.split, [u.user for u in self.users], [u.history for u in self.users], self.stage)
        if self.users:  # one unscored turn loads the lazy parts (encoder, LLM), so ms / request is per turn
            agent.chat("Recommend me something.", session_id="warm-up", user_id=self.users[0].user_id)
        self.build_seconds[spec.name] = round(time.perf_counter() - started, 2)
        return agent

    def picks(self, spec: SystemSpec, requests: Sequence[BenchRequest],
              progress: Progress | None = None) -> list[list[int]]:
        agent = self.agent(spec)
        catalog = agent.catalog
        out, started = [], time.perf_counter()
        for n, request in enumerate(requests, start=1):
            reply = agent.chat(request.text, session_id=f"bench-{n}", user_id=request.user_id)
            out.append([catalog.index_of(item.item_id) for item in reply.items][:PICKS])
            if progress:
                progress(spec.name, n, len(requests))
        self.turn_seconds[spec.name] = round(time.perf_counter() - started, 2)
        self.empty_replies[spec.name] = sum(not p for p in out)
        if self.empty_replies[spec.name]:
            self.log(f"{spec.name}: {self.empty_replies[spec.name]} of {len(requests)} replies had no picks")
        return out

    def close(self) -> None:
        self._folder.cleanup()
