"""Residual fusion z(retriever) + g·z(LLM) with the margin gate, and how the reranker applies it (no model)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from agent.llm.fusion import Fusion, margin, zscore
from agent.llm.reranker import LLMReranker

RETRIEVER = np.array([3.0, 2.5, 2.4, 1.0, 0.2])
LLM = np.log(np.array([0.05, 0.1, 0.6, 0.2, 0.05]))


def test_weight_zero_is_the_retriever_order_and_ignores_the_llm():
    fused = Fusion("residual", 0.0)(RETRIEVER, None)
    np.testing.assert_allclose(fused, zscore(RETRIEVER))
    assert list(np.argsort(-fused)) == [0, 1, 2, 3, 4]


def test_residual_fusion_adds_the_standardised_llm_scores():
    fused = Fusion("residual", 0.5)(RETRIEVER, LLM)
    expected = (RETRIEVER - RETRIEVER.mean()) / RETRIEVER.std() + 0.5 * (LLM - LLM.mean()) / LLM.std()
    np.testing.assert_allclose(fused, expected)
    assert np.argmax(fused) == 2  # a strong enough LLM preference moves the third candidate to the top
    # the scale of either input does not matter, only its shape within the list
    np.testing.assert_allclose(Fusion("residual", 0.5)(10 * RETRIEVER + 7, 3 * LLM), fused)


def test_margin_gate_leaves_confident_lists_to_the_retriever():
    confident = np.array([9.0, 1.0, 0.9, 0.8, 0.7])
    unsure = np.array([1.01, 1.0, 0.99, 0.98, 0.1])
    assert margin(confident, 3) > margin(unsure, 3)
    gate = Fusion("residual", 2.0, gate_margin=(margin(confident, 3) + margin(unsure, 3)) / 2, gate_k=3)
    assert gate.uses_llm(unsure) and not gate.uses_llm(confident)
    np.testing.assert_allclose(gate(confident, None), zscore(confident))  # LLM scores never read
    assert np.argmax(gate(unsure, LLM)) == 2


def test_minmax_is_the_legacy_fusion_and_meta_selects_the_kind():
    legacy = Fusion.from_meta({"scorer": "segments", "fusion_weight": 0.3})
    assert legacy.kind == "minmax" and legacy.weight == 0.3
    span = RETRIEVER.max() - RETRIEVER.min()
    np.testing.assert_allclose(legacy(RETRIEVER, LLM), (RETRIEVER - RETRIEVER.min()) / span + 0.3 * LLM)
    new = Fusion.from_meta({"fusion": "residual", "fusion_weight": 0.2, "gate_margin": 1.5, "gate_k": 5})
    assert (new.kind, new.weight, new.gate_margin, new.gate_k) == ("residual", 0.2, 1.5, 5)
    assert Fusion.from_meta({"fusion": "residual", "fusion_weight": 0.2, "gate_margin": 1.5}, gate=False).gate_margin is None
    assert Fusion.from_meta({"fusion": "residual", "fusion_weight": 0.2}, weight=0.7).weight == 0.7
    with pytest.raises(ValueError, match="unknown fusion 'product'"):
        Fusion("product", 1.0)
    with pytest.raises(ValueError, match="≥ 0"):
        Fusion("residual", -1.0)


class CountingScorer:
    """Stands in for a registered scorer: prefers the last candidate, counts the lists it scored."""

    def __init__(self):
        self.scored = 0

    def scores(self, users, titles):
        self.scored += len(titles)
        return [np.log(np.linspace(0.01, 1.0, len(t)) / np.linspace(0.01, 1.0, len(t)).sum()) for t in titles]


def test_reranker_skips_the_llm_where_the_gate_is_closed(monkeypatch):
    from agent.llm import reranker as module

    scorer = CountingScorer()
    monkeypatch.setattr(module, "create_scorer", lambda *a, **k: scorer)
    backend = SimpleNamespace(tokenizer=None, model_id="fake")
    meta = {"fusion": "residual", "fusion_weight": 5.0, "gate_margin": 1.0, "gate_k": 3}
    ranker = LLMReranker(backend, adapter_meta=meta, max_candidates=5)
    item = lambda i: SimpleNamespace(label=f"Film {i}")  # noqa: E731
    confident = [SimpleNamespace(item=item(i), score=s) for i, s in enumerate([9.0, 1.0, 0.9, 0.8, 0.7])]
    unsure = [SimpleNamespace(item=item(i), score=s) for i, s in enumerate([1.01, 1.0, 0.99, 0.98, 0.1])]
    out = ranker.rerank_many([None, None], [confident, unsure])
    assert scorer.scored == 1  # only the unsure list reached the LLM
    assert ranker.run_stats() == {"llm_coverage": 0.5, "lists": 2}
    assert [r.candidate.item.label for r in out[0]] == [f"Film {i}" for i in range(5)]
    assert np.isnan(out[0][0].llm_score)
    lp = CountingScorer().scores([None], [range(5)])[0]
    expected = np.argsort(-Fusion("residual", 5.0)(np.array([c.score for c in unsure]), lp), kind="stable")
    assert [r.candidate.item.label for r in out[1]] == [f"Film {i}" for i in expected]
    assert expected[0] != 0  # the LLM did change that list's order
    ungated = LLMReranker(backend, adapter_meta=meta, max_candidates=5, gate=False)
    ungated.rerank_many([None, None], [confident, unsure])
    assert scorer.scored == 3
