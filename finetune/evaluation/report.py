"""Writing an evaluation run: `report.json`, `per_user.json`, `report.md`, `ndcg_recall.png`, and `tradeoff.png`
when the run measured variants of a ranker (knob settings)."""
from __future__ import annotations

import datetime as dt
import json
import re
import os
import platform
from pathlib import Path
from typing import Any

from finetune.evaluation.harness import RankerResult
from finetune.evaluation.published import CAVEAT, PUBLISHED

MAIN_COLUMNS = ("recall@5", "recall@10", "recall@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr@10", "precision@10",
                "f1@10", "hr@1")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import torch

    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}"


def build_report(results: list[RankerResult], config: Any, meta: dict[str, Any], checks: list[dict],
                 bootstrap: dict[str, Any]) -> dict[str, Any]:
    meta = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(), **meta}
    return {"meta": meta, "config": config.model_dump(), "rankers": [r.to_json() for r in results],
            "checks": checks, "bootstrap": bootstrap,
            "skipped": [r.message for r in results if r.status != "ok"],
            "context": {"caveat": CAVEAT, "published": PUBLISHED}}


def _f(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


COMPACT_COLUMNS = ("recall@10", "ndcg@10", "mrr@10", "hr@1")


def accuracy_table(report: dict[str, Any], compact: bool) -> list[str]:
    """Markdown rows of the accuracy table; `compact` keeps the columns that fit a terminal."""
    rankers = [r for r in report["rankers"] if r["status"] == "ok"]
    comparisons = report["bootstrap"].get("comparisons", {})
    best = report["bootstrap"].get("best_baseline")
    columns = COMPACT_COLUMNS if compact else MAIN_COLUMNS
    sampled_ks = [1] if compact else report["config"]["sampled_ks"]
    top_sampled = max(report["config"]["sampled_ks"])
    head = ["ranker", *columns, *[f"1+N hr@{k}" for k in sampled_ks],
            *([] if compact else [f"1+N ndcg@{top_sampled}"]), f"Δndcg@10 vs {best} [95% CI]",
            *([] if compact else ["fit s"]), "ms/user"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rankers:
        cmp = comparisons.get(r["name"])
        delta = "best baseline" if r["name"] == best else (
            f"{cmp['diff']:+.4f} [{cmp['ci_low']:+.4f}, {cmp['ci_high']:+.4f}]" if cmp else "–")
        name = r["name"] + (f" (reranks {r['retriever']}; ceiling R@{report['config']['rerank_depth']} "
                            f"{r['ceiling_recall']:.4f})" if r["retriever"] else "")
        row = [name, *[_f(r["metrics"].get(c)) for c in columns], *[_f(r["sampled"].get(f"hr@{k}")) for k in sampled_ks],
               *([] if compact else [_f(r["sampled"].get(f"ndcg@{top_sampled}"))]), delta,
               *([] if compact else [_f(r["timing"].get("fit_s"), 1)]), _f(r["timing"].get("ms_per_user"), 2)]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def markdown(report: dict[str, Any]) -> str:
    meta, rankers = report["meta"], [r for r in report["rankers"] if r["status"] == "ok"]
    lines = [f"# Marquee evaluation — {meta['dataset']} ({meta['stage']} split)", "",
             f"- date: {meta['date']}", f"- machine: {meta['machine']}", f"- command: `{meta['command']}`",
             f"- users: {meta['n_users']} evaluated of {meta['n_users_total']}; catalog {meta['n_items']} items; "
             f"seed {report['config']['seed']}",
             "- protocol: per-user chronological leave-one-out (stable sort, file order breaks timestamp ties); "
             "full ranking over all items minus the user's history (target never removed, ties by item index); "
             f"sampled view: target + {report['config']['sampled_negatives']} fixed seeded negatives", ""]
    loud = [r["message"] for r in report["rankers"] if r["status"] != "ok"]
    if loud:
        lines += ["> **NOT MEASURED in this run:**", ">"] + [f"> - {m}" for m in loud] + [""]
    lines += ["## Accuracy", "", *accuracy_table(report, compact=False)]
    k = report["config"]["beyond_k"]
    lines += ["", f"## Beyond accuracy and validity (top {k})", "",
              "| ranker | coverage | genre diversity | long-tail share | novelty (bits) | out-of-catalog | "
              "duplicate | history repeat (raw output) |", "|---|---|---|---|---|---|---|---|"]
    for r in rankers:
        b, v = r["beyond"], r["validity"]
        lines.append(f"| {r['name']} | {_f(b['coverage'])} | {_f(b['diversity'])} | {_f(b['long_tail_share'])} | "
                     f"{_f(b['novelty'], 2)} | {_f(v['out_of_catalog'])} | {_f(v['duplicate'])} | "
                     f"{_f(v['history_repeat'])} |")
    lines += ["", "## Protocol checks", "", "| check | status | value | detail |", "|---|---|---|---|"]
    for c in report["checks"]:
        lines.append(f"| {c['name']} | **{c['status']}** | {_f(c.get('value'))} | {c.get('detail', '')} |")
    lines += ["", "## Context: published LLM rerankers (NOT the same protocol)", "", f"_{CAVEAT}_", "",
              "| system | data / protocol | reported figures | source |", "|---|---|---|---|"]
    for p in report["context"]["published"]:
        figures = ", ".join(f"{k} {v}" for k, v in {**p["figures"], **p["their_baselines"]}.items())
        lines.append(f"| {p['system']} | {p['data']} | {figures} | {p['source']} |")
    return "\n".join(lines) + "\n"


def delta_rows(report: dict[str, Any]) -> list[tuple[str, float, float, float]]:
    """(ranker, ΔNDCG@10 vs the best baseline, 95% CI low, high) from the run's paired bootstrap, best first;
    the best baseline itself is the zero row."""
    boot = report["bootstrap"]
    best = boot.get("best_baseline")
    if best is None:
        return []
    rows = [(best, 0.0, 0.0, 0.0)]
    rows += [(name, c["diff"], c["ci_low"], c["ci_high"]) for name, c in boot.get("comparisons", {}).items()]
    return sorted(rows, key=lambda row: -row[1])


def bar_chart(report: dict[str, Any], path: Path) -> int:
    """Left: NDCG@10 and Recall@10 per ranker. Right: ΔNDCG@10 against the best baseline with its 95%
    bootstrap CI (a forest plot: an interval that crosses 0 is no measured difference). Returns the number
    of intervals drawn."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    import numpy as np

    rankers = [r for r in report["rankers"] if r["status"] == "ok"]
    names = [r["name"] for r in rankers]
    deltas = delta_rows(report)
    x = np.arange(len(names))
    width = max(6.0, 1.1 * len(names) + 2)
    fig, (ax, forest) = plt.subplots(1, 2, figsize=(width + 5.5, 4.2), dpi=120,
                                     gridspec_kw={"width_ratios": [width, 5.5]})
    for offset, metric in ((-0.2, "ndcg@10"), (0.2, "recall@10")):
        values = [r["metrics"][metric] for r in rankers]
        bars = ax.bar(x + offset, values, width=0.4, label=metric)
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("full-ranking metric")
    ax.set_title(f"{report['meta']['dataset']}: {report['meta']['n_users']} users, {report['meta']['stage']} split")
    ax.legend()
    if deltas:
        y = np.arange(len(deltas))[::-1]
        diffs = np.array([d for _, d, _, _ in deltas])
        errors = np.array([[d - lo for _, d, lo, _ in deltas], [hi - d for _, d, _, hi in deltas]])
        forest.errorbar(diffs, y, xerr=errors, fmt="o", capsize=3, color="tab:blue")
        forest.axvline(0.0, color="grey", linewidth=0.8, linestyle="--")
        forest.set_yticks(y, [name for name, *_ in deltas], fontsize=8)
        forest.set_xlabel(f"ΔNDCG@10 vs {report['bootstrap']['best_baseline']} (95% bootstrap CI)")
        forest.set_title("difference to the best baseline", fontsize=10)
    else:
        forest.axis("off")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return len(deltas)


def variant_groups(report: dict[str, Any]) -> dict[str, list[dict]]:
    """Rankers measured with variants (`hybrid`, `hybrid@mmr0.7`, …), grouped by base name, base first."""
    groups: dict[str, list[dict]] = {}
    for r in (r for r in report["rankers"] if r["status"] == "ok"):
        groups.setdefault(r["name"].split("@", 1)[0], []).append(r)
    return {base: rows for base, rows in groups.items() if len(rows) > 1}


def knob_lines(rows: list[dict]) -> dict[str, list[dict]]:
    """One line per knob: variants `mmr0.8`, `mmr0.6` share the knob "mmr"; the plain ranker (the default
    setting) starts every line."""
    base = [r for r in rows if "@" not in r["name"]]
    lines: dict[str, list[dict]] = {}
    for r in rows:
        label = r["name"].partition("@")[2]
        if label:
            lines.setdefault(re.match(r"[^\d.]*", label).group(0).rstrip("-_="), []).append(r)
    return {knob: base + line for knob, line in lines.items()}


def tradeoff_chart(report: dict[str, Any], path: Path) -> bool:
    """NDCG@10 against genre diversity and long-tail share for each variant group (e.g. the MMR and
    long-tail knobs): the accuracy each knob setting trades for reach. False when the run has no variants."""
    groups = variant_groups(report)
    if not groups:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=120)
    for ax, key, label in ((axes[0], "diversity", "intra-list genre diversity"),
                           (axes[1], "long_tail_share", "long-tail share")):
        for base, rows in groups.items():
            for knob, line in knob_lines(rows).items():
                xs, ys = [r["beyond"][key] for r in line], [r["metrics"]["ndcg@10"] for r in line]
                ax.plot(xs, ys, "o-", label=f"{base}: {knob}" if knob else base)
                for r, x, y in zip(line, xs, ys):
                    ax.annotate(r["name"].partition("@")[2] or "default", (x, y), fontsize=7,
                                xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(f"{label} (top {report['config']['beyond_k']})")
        ax.set_ylabel("NDCG@10")
        ax.legend(fontsize=8)
    fig.suptitle(f"{report['meta']['dataset']}: accuracy vs reach per knob setting ({report['meta']['n_users']} users)")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return True


def write_report(report: dict[str, Any], results: list[RankerResult], out: Path,
                 user_ids: list[str]) -> dict[str, Path]:
    """Write all files atomically into `out` and return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    per_user = {"user_ids": list(user_ids),
                "ndcg@10": {r.name: [round(float(v), 6) for v in r.per_user_ndcg10]
                            for r in results if r.status == "ok"}}
    paths = {"json": out / "report.json", "per_user": out / "per_user.json", "markdown": out / "report.md",
             "png": out / "ndcg_recall.png"}
    for key, text in (("json", json.dumps(report, indent=2, default=float)),
                      ("per_user", json.dumps(per_user)), ("markdown", markdown(report))):
        tmp = paths[key].with_suffix(paths[key].suffix + ".tmp")
        tmp.write_text(text + ("\n" if not text.endswith("\n") else ""), encoding="utf-8")
        tmp.replace(paths[key])
    tmp = out / "ndcg_recall.tmp.png"
    bar_chart(report, tmp)
    tmp.replace(paths["png"])
    tmp = out / "tradeoff.tmp.png"
    if tradeoff_chart(report, tmp):
        paths["tradeoff"] = out / "tradeoff.png"
        tmp.replace(paths["tradeoff"])
    return paths
