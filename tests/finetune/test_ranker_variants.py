"""Ablation rows as configuration: `NAME@LABEL` is NAME with extra params, measured like any ranker."""
from __future__ import annotations

import pytest

from retrieval.config import EvalConfig
from finetune.evaluation.rankers import entry
from finetune.evaluation.harness import Harness


def test_variant_params_merge_over_the_base_params():
    cfg = EvalConfig(rankers=["ease", "ease@strong"],
                     params={"ease": {"l2": 50.0}, "ease@strong": {"l2": 5000.0}, "ease@other": {}})
    assert cfg.params_for("ease") == {"l2": 50.0}
    assert cfg.params_for("ease@strong") == {"l2": 5000.0}
    assert cfg.params_for("ease@other") == {"l2": 50.0}  # a variant without its own table is the base ranker
    assert entry("ease@strong") is entry("ease")
    with pytest.raises(ValueError, match="unknown ranker 'nope@x'"):
        entry("nope@x")


def test_variants_are_separate_rows_with_their_own_params(tiny_dataset, tmp_path):
    cfg = EvalConfig(rankers=["ease", "ease@strong"], params={"ease@strong": {"l2": 1e6}}, bootstrap_samples=50,
                     ks=[1, 3], sampled_negatives=2, sampled_ks=[1, 3], beyond_k=3, rerank_depth=3)
    results = Harness(cfg, tiny_dataset, tmp_path, log=lambda m: None).run()
    rows = {r.name: r for r in results}
    assert set(rows) == {"ease", "ease@strong"} and all(r.status == "ok" for r in results)
    assert rows["ease@strong"].params["l2"] == 1e6 and rows["ease"].params["l2"] != 1e6


def test_variant_groups_get_a_tradeoff_chart(tmp_path):
    from finetune.evaluation.report import tradeoff_chart, variant_groups

    def row(name, ndcg, diversity, tail):
        return {"name": name, "status": "ok", "metrics": {"ndcg@10": ndcg},
                "beyond": {"diversity": diversity, "long_tail_share": tail}}

    report = {"rankers": [row("ease", .07, .80, .05), row("hybrid", .085, .80, .08), row("hybrid@mmr0.6", .080, .86, .09),
                          {"name": "hybrid@broken", "status": "failed"}],
              "config": {"beyond_k": 10}, "meta": {"dataset": "ml-100k", "n_users": 943}}
    assert [r["name"] for r in variant_groups(report)["hybrid"]] == ["hybrid", "hybrid@mmr0.6"]
    assert "ease" not in variant_groups(report)  # no variants, no curve
    assert tradeoff_chart(report, tmp_path / "t.png") and (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    assert not tradeoff_chart({**report, "rankers": report["rankers"][:2]}, tmp_path / "none.png")


def test_each_knob_gets_its_own_line_starting_at_the_default():
    from finetune.evaluation.report import knob_lines

    rows = [{"name": n} for n in ("hybrid", "hybrid@mmr0.8", "hybrid@mmr0.6", "hybrid@tail0.3")]
    lines = {knob: [r["name"] for r in line] for knob, line in knob_lines(rows).items()}
    assert lines == {"mmr": ["hybrid", "hybrid@mmr0.8", "hybrid@mmr0.6"], "tail": ["hybrid", "hybrid@tail0.3"]}
