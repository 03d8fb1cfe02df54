"""Ablation rows as configuration: `NAME@LABEL` is NAME with extra params, measured like any ranker."""
from __future__ import annotations

import pytest

from finetune.evaluation.protocol import EvalConfig
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
