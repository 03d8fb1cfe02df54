"""Expert iteration for the explainer's self-training (finetune/training/sampling.py, `[finetune.explain]
steps_back`): each case gets, besides its samples, the draft served decoding writes by stepping back from dead ends,
first in the file (selection keeps the first passing ones), and the model card names the run it continued from."""
from __future__ import annotations

import json

import pytest

from finetune.data.explain_cases import ExplainCase
from finetune.training.explain_card import model_card
from finetune.training.sampling import read_samples, sample_cases


@pytest.fixture(scope="module")
def fargo_explain_case(fargo_case):
    fargo, evidence = fargo_case
    return ExplainCase(case_id="r1:0", split="train", reply_id="r1", position=0, kind="genre", user_id=None,
                       request="Recommend some crime films.", wishes="genres: Crime", liked=("Heat (1995)",),
                       asked_genres=("Crime",), item_id=fargo.item_id, evidence=evidence.model_dump())


def test_each_case_gets_the_served_draft_first_beside_its_samples(llm, catalog, checker, fargo_explain_case, tmp_path):
    out = tmp_path / "samples.jsonl"
    sample_cases(llm, [fargo_explain_case], catalog, out, samples=2, temperature=0.7, top_p=0.95, teacher=False,
                 adapter=None, round_no=1, max_new_tokens=48, checker=checker, steps_back=8)
    rows = read_samples(out)
    assert [r["search"] for r in rows] == [True, False, False]
    assert rows[0]["temperature"] == 0.0 and rows[0]["sample"] == 2 and {r["sample"] for r in rows[1:]} == {0, 1}
    # the served draft is what the explainer writes for the same prompt: greedy is deterministic
    again = tmp_path / "again.jsonl"
    sample_cases(llm, [fargo_explain_case], catalog, again, samples=1, temperature=0.7, top_p=0.95, teacher=False,
                 adapter=None, round_no=1, max_new_tokens=48, checker=checker, steps_back=8)
    assert read_samples(again)[0]["raw"] == rows[0]["raw"]


def test_steps_back_without_constrained_decoding_is_a_clear_error(llm, catalog, fargo_explain_case, tmp_path):
    with pytest.raises(ValueError, match="steps_back needs claim-constrained decoding"):
        sample_cases(llm, [fargo_explain_case], catalog, tmp_path / "s.jsonl", samples=1, temperature=0.7,
                     top_p=0.95, teacher=False, adapter=None, round_no=1, checker=None, steps_back=4)


def test_the_model_card_lists_the_rounds_of_the_run_it_continued_from():
    def round_(n, samples):
        return {"round": n, "sampled_with": "round adapter, serving prompt", "temperature": 0.7,
                "selection": {"samples": samples, "pass_rate": 0.5, "kept": samples // 2}, "training_examples": 9,
                "validation": {"pass_rate": 0.8, "cases": 30}}

    meta = {"base_model": "m", "prompts": {"explain": 3, "describe": 3}, "trained_at": "2026-12-02T12:00:00Z",
            "machine": "cpu", "minutes": 1.0, "base_validation": {"pass_rate": 0.6, "cases": 30},
            "config": {"constrained": True, "steps_back": 8}, "rounds": [round_(1, 300)],
            "started_from": {"trained_at": "2026-12-01T09:28:17Z", "rounds": [round_(1, 680), round_(2, 360)]}}
    card = model_card(json.loads(json.dumps(meta)), "marquee finetune --task explain")
    assert "continued from the adapter trained 2026-12-01T09:28:17Z" in card
    assert "| run of 2026-12-01T09:28:17Z, round 2 | round adapter" in card and "\n| 1 | round adapter" in card
    assert "The adapter started from, with the serving prompt, constrained decoding: 60.0%" in card
