"""Scoring the picks: NDCG@5 and HR@5 of the held-out target, constraint satisfaction, picks returned;
per (system, request type) means, paired bootstrap CIs against the reference system, and the targets.

The metrics and the bootstrap are those of `marquee eval` (`finetune/evaluation/metrics.py`): the picks
are a ranked list of ≤ 5 items, a missing target scores 0.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from finetune.evaluation import metrics
from finetune.evaluation.conversational.attributes import satisfaction
from retrieval.config.conversational import ALL, PICKS, ConversationalConfig
from finetune.evaluation.conversational.requests import BenchRequest
from retrieval.ranking import NO_ITEM
from retrieval.catalog.schema import Catalog


def score_picks(picks: Sequence[Sequence[int]], requests: Sequence[BenchRequest],
                catalog: Catalog) -> dict[str, np.ndarray]:
    """Per request: ndcg@5, hr@5, satisfaction (NaN for an unconstrained request or no picks), returned
    (how many picks)."""
    if len(picks) != len(requests):
        raise ValueError(f"{len(picks)} pick lists for {len(requests)} requests")
    lists = np.full((len(requests), PICKS), NO_ITEM, dtype=np.int64)
    for row, chosen in enumerate(picks):
        chosen = list(chosen)[:PICKS]
        lists[row, :len(chosen)] = chosen
    hits = metrics.hits_from_lists(lists, np.array([r.target for r in requests], dtype=np.int64))
    return {f"ndcg@{PICKS}": metrics.ndcg(hits, 1, PICKS),
            f"hr@{PICKS}": metrics.hit_rate(hits, 1, PICKS),
            "satisfaction": np.array([satisfaction(list(p)[:PICKS], r.attributes, catalog)
                                      if r.attributes.constrained else np.nan for p, r in zip(picks, requests)]),
            "returned": np.array([min(len(p), PICKS) for p in picks], dtype=np.float64)}


def type_rows(requests: Sequence[BenchRequest], types: Sequence[str]) -> dict[str, np.ndarray]:
    """Request positions per type, plus ALL (every request)."""
    kinds = np.array([r.type for r in requests])
    rows = {t: np.flatnonzero(kinds == t) for t in types}
    rows[ALL] = np.arange(len(requests))
    return rows


def summarise(per_request: dict[str, np.ndarray], rows: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Means per type: {type: {"requests", "ndcg@5", "hr@5", "satisfaction" (None: not constrained), "returned"}}."""
    out = {}
    for kind, idx in rows.items():
        sat = per_request["satisfaction"][idx]
        sat = sat[~np.isnan(sat)]
        out[kind] = {"requests": int(idx.size),
                     **{m: float(per_request[m][idx].mean()) if idx.size else None
                        for m in (f"ndcg@{PICKS}", f"hr@{PICKS}", "returned")},
                     "satisfaction": float(sat.mean()) if sat.size else None}
    return out


def compare(per_system: dict[str, dict[str, np.ndarray]], rows: dict[str, np.ndarray],
            config: ConversationalConfig) -> dict[str, dict[str, dict[str, float]]]:
    """{system: {type: paired bootstrap of its NDCG@5 minus the reference's}} over the same requests."""
    metric = f"ndcg@{PICKS}"
    reference = per_system[config.reference][metric]
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, values in per_system.items():
        if name == config.reference:
            continue
        out[name] = {kind: metrics.paired_bootstrap(values[metric][idx], reference[idx], config.bootstrap_samples,
                                                    config.seed)
                     for kind, idx in rows.items() if idx.size}
    return out


def targets(summary: dict[str, dict[str, dict[str, Any]]], config: ConversationalConfig) -> list[dict[str, Any]]:
    """Each chat row against each target: NDCG@5 ratio to the target's baseline on the target's type."""
    metric = f"ndcg@{PICKS}"
    out = []
    for spec in config.agents:
        for target in config.targets:
            if spec.name == target.baseline:
                continue
            row = {"system": spec.name, "type": target.type, "baseline": target.baseline, "target": target.ratio,
                   "value": None, "baseline_value": None, "ratio": None, "met": None}
            mine, base = summary.get(spec.name, {}).get(target.type), summary.get(target.baseline, {}).get(target.type)
            if mine and base and mine[metric] is not None and base[metric] is not None:
                row.update(value=mine[metric], baseline_value=base[metric])
                if base[metric] > 0:
                    row["ratio"] = mine[metric] / base[metric]
                    row["met"] = row["ratio"] >= target.ratio
            out.append(row)
    return out
