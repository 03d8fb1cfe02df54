"""One call from configuration to report: split, requests, every system's picks, scores, files.

    report, paths = run_conversational(config, dataset, settings, out=Path("/tmp/conv"))
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from finetune.data.splits import leave_one_out
from finetune.evaluation.conversational import scoring
from retrieval.config.conversational import PICKS, ConversationalConfig
from finetune.evaluation.conversational.isolation import target_rows, visible_histories, visible_interactions
from finetune.evaluation.conversational.report import build_report, write_report
from finetune.evaluation.conversational.requests import RequestWriter, bench_users, has_ratings
from finetune.evaluation.conversational.systems import AgentRows, RankerRows, agent_settings
from finetune.evaluation.harness import select_users
from finetune.evaluation.rankers import RANKERS, BuildContext
from retrieval.catalog.schema import Dataset


def check_systems(config: ConversationalConfig) -> None:
    """Fail before any work on a ranker `marquee eval` does not know, or one that only reranks another's list."""
    names = [s.ranker for s in config.systems if s.kind == "ranker"]
    unknown = [n for n in names if n not in RANKERS]
    if unknown:
        raise ValueError(f"unknown ranker(s) {', '.join(unknown)}; known: {', '.join(RANKERS)}")
    rerankers = [n for n in names if RANKERS[n].reranks]
    if rerankers:
        raise ValueError(f"{', '.join(rerankers)} rerank another ranker's list; use full rankers "
                         f"(e.g. mostpop, ease, sasrec, sasrec+ease)")


def run_conversational(config: ConversationalConfig, dataset: Dataset, settings: Any, out: Path | None = None,
                       command: str = "", log: Callable[[str], None] = print,
                       progress: Callable[[str, int, int], None] | None = None,
                       service=None) -> tuple[dict[str, Any], dict[str, Path]]:
    """Run every system of `config` on the same requests; write report files into `out` when given.
    `service`: a RetrievalService over `dataset` (built from `settings` when None; only chat rows use it)."""
    check_systems(config)
    started, load = time.perf_counter(), round(os.getloadavg()[0], 2)  # the CPU may be shared: say how busy
    home = Path(settings.home)
    split = leave_one_out(dataset.interactions)
    users = select_users(split, config.users, config.seed)
    visible = visible_interactions(split, config.stage)
    histories = visible_histories(split, config.stage, users)
    targets = [int(split.interactions.items[target_rows(split, config.stage)[u]]) for u in users]
    people = bench_users(visible, histories, users, targets)
    writer = RequestWriter(dataset.catalog, seed=config.seed, min_rating=config.min_rating,
                           rated=has_ratings(visible))
    requests = writer.write(people, config.types)
    log(f"{len(people)} users, {len(requests.requests)} requests "
        f"({', '.join(f'{t} {len(requests.of_type(t))}' for t in config.types)})")

    context = BuildContext(dataset=dataset, split=split, home=home, seed=config.model_seed, settings=settings, log=log)
    rankers = RankerRows(context, people, log=log)
    agents = None
    picks: dict[str, list[list[int]]] = {}
    seconds: dict[str, float] = {}
    try:
        for spec in config.systems:
            t0 = time.perf_counter()
            if spec.kind == "ranker":
                picks[spec.name] = rankers.picks(spec, requests.requests, progress)
            else:
                if agents is None:
                    if service is None:
                        from retrieval.service import RetrievalService

                        service = RetrievalService(settings, dataset=dataset)
                    agents = AgentRows(settings, service, visible, split, people, config.stage, log=log)
                picks[spec.name] = agents.picks(spec, requests.requests, progress)
            seconds[spec.name] = round(time.perf_counter() - t0, 2)
    finally:
        if agents is not None:
            agents.close()

    rows = scoring.type_rows(requests.requests, config.types)
    per_request = {name: scoring.score_picks(p, requests.requests, dataset.catalog) for name, p in picks.items()}
    summary = {name: scoring.summarise(values, rows) for name, values in per_request.items()}
    timing = timing_of(config, seconds, rankers, agents, len(requests.requests))
    meta = {"dataset": dataset.catalog.name, "n_users": len(people), "n_users_total": int(split.evaluated_users.size),
            "n_items": len(dataset.catalog), "n_requests": len(requests.requests), "picks": PICKS,
            "command": command, "wall_s": round(time.perf_counter() - started, 1), "load_avg_1m": load,
            "stage": config.stage, "agents": agent_notes(config, settings)}
    report = build_report(config, meta, requests, summary, scoring.compare(per_request, rows, config),
                          scoring.targets(summary, config), timing, dataset.catalog)
    paths = write_report(report, requests, picks, per_request, dataset.catalog, out) if out is not None else {}
    return report, paths


def timing_of(config: ConversationalConfig, seconds: dict[str, float], rankers: RankerRows,
              agents: AgentRows | None, n_requests: int) -> dict[str, dict[str, Any]]:
    """Per row: seconds in all, set-up (a ranker's fit + scoring, shared by its rows; an agent's build) and
    ms per request spent answering alone."""
    turns = {**rankers.turn_seconds, **(agents.turn_seconds if agents is not None else {})}
    timing = {}
    for spec in config.systems:
        setup = (rankers.fit_seconds.get(spec.ranker, 0.0) if spec.kind == "ranker"
                 else agents.build_seconds.get(spec.name, 0.0))
        timing[spec.name] = {"seconds": seconds[spec.name], "setup_s": setup,
                             "ms_per_request": round(1000 * turns[spec.name] / max(n_requests, 1), 2)}
        if spec.kind == "agent":
            timing[spec.name]["empty_replies"] = agents.empty_replies.get(spec.name, 0)
    return timing


def agent_notes(config: ConversationalConfig, settings: Any) -> dict[str, dict[str, Any]]:
    """Per chat row: whether it reranks with the LLM and with which fusion weight (0 = the retriever's order,
    no forward pass), as the report must say what was measured."""
    from agent.llm.loading import ADAPTER_META, ModelNotAvailable, resolve_adapter

    notes = {}
    for spec in config.agents:
        s = agent_settings(settings, spec.settings)
        weight = s.llm.fusion_weight
        if weight is None and s.agent.rerank:
            try:
                path = resolve_adapter(s.llm.adapter)
            except ModelNotAvailable:
                path = None
            meta = path / ADAPTER_META if path is not None else None
            weight = json.loads(meta.read_text()).get("fusion_weight") if meta is not None and meta.is_file() else None
        notes[spec.name] = {"rerank": s.agent.rerank, "fusion_weight": weight if s.agent.rerank else None,
                            "explain": s.agent.explain, "overrides": spec.settings}
    return notes
