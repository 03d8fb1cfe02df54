"""One call from configuration to report: build the harness, run every ranker, compare, check, write."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from finetune.evaluation.harness import Harness, RankerResult, bootstrap_vs_best, protocol_checks
from finetune.evaluation.report import build_report, write_report
from retrieval.catalog.schema import Dataset
from retrieval.config import EvalConfig


def run_evaluation(config: EvalConfig, dataset: Dataset, home: Path, out: Path | None = None, settings: Any = None,
                   command: str = "", log: Callable[[str], None] = print,
                   progress: Callable[[str, int, int], None] | None = None
                   ) -> tuple[dict[str, Any], list[RankerResult], dict[str, Path]]:
    """Evaluate `config.rankers` on `dataset`; write the report files into `out` (when given)."""
    harness = Harness(config, dataset, home, settings=settings, log=log, progress=progress)
    results = harness.run()
    checks = protocol_checks(results, config, dataset, len(harness.cases))
    bootstrap = bootstrap_vs_best(results, config.bootstrap_samples, config.seed)
    meta = {"dataset": dataset.catalog.name, "stage": config.stage, "n_users": len(harness.cases),
            "n_users_total": int(harness.split.evaluated_users.size), "n_items": len(dataset.catalog),
            "command": command}
    report = build_report(results, config, meta, checks, bootstrap)
    paths = write_report(report, results, out, [c.user_id for c in harness.cases]) if out is not None else {}
    return report, results, paths
