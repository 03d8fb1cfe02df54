"""Protocol checks of docs/ARCHITECTURE.md §6 on the real ML-100k (seconds): MostPop figures and the next-id
leak canary."""
from __future__ import annotations

import numpy as np
import pytest

from finetune.evaluation.harness import Harness, protocol_checks
from retrieval.config import EvalConfig
from retrieval.catalog.schema import Dataset, Interactions


def _run(dataset, tmp_path, rankers=("mostpop", "next-id-canary")):
    config = EvalConfig(rankers=list(rankers), bootstrap_samples=100)
    harness = Harness(config, dataset, tmp_path, log=lambda msg: None)
    results = harness.run()
    return {r.name: r for r in results}, protocol_checks(results, config, dataset, len(harness.cases))


def test_mostpop_reproduces_the_protocol_figures_and_the_canary_stays_below(ml100k, tmp_path):
    results, checks = _run(ml100k, tmp_path)
    mostpop = results["mostpop"].metrics
    assert mostpop["recall@10"] == pytest.approx(0.0859, abs=0.003)
    assert mostpop["ndcg@10"] == pytest.approx(0.0449, abs=0.003)
    assert results["next-id-canary"].metrics["ndcg@10"] < mostpop["ndcg@10"]
    assert [c["status"] for c in checks] == ["PASS", "PASS", "PASS"]


def test_canary_catches_item_id_tie_breaking(ml100k, tmp_path):
    """Re-ordering the file so that equal timestamps follow item id (the leak docs/ARCHITECTURE.md §6 forbids)
    makes the canary jump above MostPop: the check really detects the leak."""
    inter = ml100k.interactions
    order = np.lexsort((inter.items, inter.timestamps, inter.users))  # ties by item id
    leaky = Dataset(catalog=ml100k.catalog, interactions=Interactions(
        user_ids=inter.user_ids, users=inter.users[order], items=inter.items[order],
        ratings=inter.ratings[order], timestamps=inter.timestamps[order]))
    results, checks = _run(leaky, tmp_path)
    assert results["next-id-canary"].metrics["ndcg@10"] > results["mostpop"].metrics["ndcg@10"]
    assert checks[-1]["status"] == "FAIL"


def test_checks_are_not_claimed_on_a_user_sample(ml100k, tmp_path):
    config = EvalConfig(rankers=["mostpop"], users=100, bootstrap_samples=10)
    harness = Harness(config, ml100k, tmp_path, log=lambda msg: None)
    checks = protocol_checks(harness.run(), config, ml100k, len(harness.cases))
    assert [c["status"] for c in checks] == ["N/A", "N/A", "N/A"]
    assert "100 users" in checks[0]["detail"]
