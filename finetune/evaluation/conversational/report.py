"""Writing a conversational benchmark run: `report.json`, `per_user.json` and `report.md`, in the style of
`marquee eval` (`finetune/evaluation/report.py`: same machine line, atomic writes)."""
from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.config.conversational import ALL, PICKS, ConversationalConfig
from finetune.evaluation.conversational.requests import RequestSet
from finetune.evaluation.report import machine
from retrieval.catalog.schema import Catalog

NDCG, HR = f"ndcg@{PICKS}", f"hr@{PICKS}"
EXAMPLES_PER_TYPE = 3
STAGE_NOTES = {"test": "the target is each user's held-out last film; every system sees train + the user's validation "
                       "film (as `marquee eval`'s test cases)",
               "validation": "the target is each user's validation film (the one before the last); every system sees "
                             "the train split only (for tuning)"}


def build_report(config: ConversationalConfig, meta: dict[str, Any], requests: RequestSet,
                 summary: dict[str, dict[str, dict[str, Any]]], comparisons: dict[str, Any],
                 targets: list[dict[str, Any]], timing: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    meta = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(), **meta}
    examples = {t: [{"text": r.text, "target": catalog.at(r.target).label}
                    for r in requests.of_type(t)[:EXAMPLES_PER_TYPE]] for t in config.types}
    return {"meta": meta, "config": config.model_dump(),
            "requests": {"per_type": {t: len(requests.of_type(t)) for t in config.types},
                         "skipped": {t: dict(reasons) for t, reasons in requests.skipped.items()},
                         "examples": examples},
            "results": summary,
            "bootstrap": {"reference": config.reference, "metric": NDCG, "comparisons": comparisons},
            "targets": targets, "timing": timing}


def _f(value: float | None, digits: int = 4) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _ci(cmp: dict[str, float] | None) -> str:
    return "–" if not cmp else f"{cmp['diff']:+.4f} [{cmp['ci_low']:+.4f}, {cmp['ci_high']:+.4f}]"


def types_of(report: dict[str, Any]) -> list[str]:
    return [*report["config"]["types"], ALL]


def ndcg_table(report: dict[str, Any]) -> list[str]:
    """Systems × request types: NDCG@5 (the headline table)."""
    kinds = types_of(report)
    lines = ["| system | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for name, by_type in report["results"].items():
        lines.append(f"| {name} | " + " | ".join(_f(by_type.get(k, {}).get(NDCG)) for k in kinds) + " |")
    return lines


def type_table(report: dict[str, Any], kind: str) -> list[str]:
    reference = report["bootstrap"]["reference"]
    lines = [f"| system | {NDCG} | {HR} | constraint satisfaction | picks returned | Δ{NDCG} vs {reference} [95% CI] |",
             "|---|---|---|---|---|---|"]
    for name, by_type in report["results"].items():
        row = by_type.get(kind)
        if not row:
            continue
        delta = "reference" if name == reference else _ci(report["bootstrap"]["comparisons"].get(name, {}).get(kind))
        lines.append(f"| {name} | {_f(row[NDCG])} | {_f(row[HR])} | {_f(row['satisfaction'], 3)} | "
                     f"{_f(row['returned'], 2)} | {delta} |")
    return lines


def target_table(report: dict[str, Any]) -> list[str]:
    lines = [f"| chat row | request type | {NDCG} | baseline | baseline {NDCG} | ratio | target | met |",
             "|---|---|---|---|---|---|---|---|"]
    for t in report["targets"]:
        met = "–" if t["met"] is None else ("yes" if t["met"] else "no")
        lines.append(f"| {t['system']} | {t['type']} | {_f(t['value'])} | {t['baseline']} | {_f(t['baseline_value'])} | "
                     f"{_f(t['ratio'], 2)} | ≥ {t['target']:.1f}× | {met} |")
    return lines


def markdown(report: dict[str, Any]) -> str:
    meta, req = report["meta"], report["requests"]
    agents = "; ".join(f"{name}: LLM rerank {'on' if a['rerank'] else 'off'}"
                       + (f" (fusion weight {a['fusion_weight']}"
                          + (": no LLM forward pass, the retriever's scores decide)" if a["fusion_weight"] == 0 else ")")
                          if a["rerank"] else "")
                       + f", explanations {a['explain']}" + (f", overrides {a['overrides']}" if a["overrides"] else "")
                       for name, a in meta["agents"].items())
    lines = [f"# Marquee conversational benchmark — {meta['dataset']}", "",
             f"- date: {meta['date']}", f"- machine: {meta['machine']}, load average {meta.get('load_avg_1m', '?')} at start",
             f"- command: `{meta['command']}`",
             f"- users: {meta['n_users']} evaluated users of {meta['n_users_total']} (seed {report['config']['seed']}); "
             f"{meta['n_requests']} requests; wall time {meta['wall_s']:.0f} s",
             f"- stage {meta['stage']}: " + (STAGE_NOTES[meta['stage']] if meta['stage'] in STAGE_NOTES else ""),
             *([f"- chat rows: {agents}"] if agents else []),
             "- protocol: one request per type written from the target's attributes, never naming it; the chat "
             "answers each as that known user in a fresh session; rankers ignore the words (top 5 over all items "
             "minus the visible history) or, `+oracle`, pick among the items having the request's attributes "
             "(genre, decade; \"I loved X\": sharing a genre with X). "
             f"{NDCG} / {HR} of the target among the ≤ {PICKS} picks (missing = 0); constraint satisfaction = "
             "share of picks having the request's attributes (none for vague requests)", "",
             f"## {NDCG} by request type", "", *ndcg_table(report), ""]
    for kind in types_of(report):
        title = "all requests (pooled)" if kind == ALL else f"{kind} requests"
        lines += [f"## {title}", "", *type_table(report, kind), ""]
    if report["targets"]:
        lines += ["## Targets", "", *target_table(report), ""]
    lines += ["## Requests", "", "| type | requests | skipped users (reason) | example |", "|---|---|---|---|"]
    for kind in report["config"]["types"]:
        skipped = "; ".join(f"{n} ({why})" for why, n in req["skipped"].get(kind, {}).items()) or "0"
        example = req["examples"].get(kind) or [{}]
        sample = f"{example[0]['text']} → {example[0]['target']}" if example[0] else "–"
        lines.append(f"| {kind} | {req['per_type'][kind]} | {skipped} | {sample} |")
    lines += ["", "## Time", "", "| system | seconds in all | set-up s (fit / build) | ms / request | replies without picks |",
              "|---|---|---|---|---|"]
    for name, t in report["timing"].items():
        lines.append(f"| {name} | {t['seconds']:.1f} | {t['setup_s']:.1f} | {t['ms_per_request']:.1f} | "
                     f"{t.get('empty_replies', '–')} |")
    return "\n".join(lines) + "\n"


def per_request_json(requests: RequestSet, picks: dict[str, list[list[int]]],
                     per_request: dict[str, dict[str, np.ndarray]], catalog: Catalog) -> dict[str, Any]:
    def clean(values: np.ndarray) -> list[float | None]:
        return [None if math.isnan(v) else round(float(v), 6) for v in values]

    return {"requests": [r.to_json(catalog) for r in requests.requests],
            "systems": {name: {"picks": [[catalog.at(i).item_id for i in p] for p in chosen],
                               **{m: clean(v) for m, v in per_request[name].items()}}
                        for name, chosen in picks.items()}}


def write_report(report: dict[str, Any], requests: RequestSet, picks: dict[str, list[list[int]]],
                 per_request: dict[str, dict[str, np.ndarray]], catalog: Catalog, out: Path) -> dict[str, Path]:
    """Write the files atomically into `out` and return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "per_user": out / "per_user.json", "markdown": out / "report.md"}
    texts = {"json": json.dumps(report, indent=2, default=float, ensure_ascii=False),
             "per_user": json.dumps(per_request_json(requests, picks, per_request, catalog), ensure_ascii=False),
             "markdown": markdown(report)}
    for key, text in texts.items():
        tmp = paths[key].with_suffix(paths[key].suffix + ".tmp")
        tmp.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        tmp.replace(paths[key])
    return paths
