"""Cached frozen layers + the trainable top layers compute exactly what the whole model computes."""
from __future__ import annotations

import pytest
import torch

from agent.llm.scorers import segments
from agent.llm.loading import load_model_uncached
from agent.llm.prompting import UserSummary
from finetune.training.frozen_cache import build_cache, first_trainable_layer, top_segment_logits

pytestmark = pytest.mark.slow  # loads the real model


def test_bottom_plus_top_equals_the_full_forward_pass(shared_home):
    llm = load_model_uncached(home=shared_home, adapter="none", dtype="float32")
    tok, model = llm.tokenizer, llm.model
    users = [UserSummary(recent=("Star Wars (1977)", "Alien (1979)")), UserSummary(request="a family film")]
    lists = [["Aliens (1986)", "Babe (1995)", "Heat (1995)"], ["Toy Story (1995)", "Fargo (1996)"]]
    prompts = [segments.build_segment_prompt(tok, u, t) for u, t in zip(users, lists)]
    yes_no = segments.answer_tokens(tok)
    start = first_trainable_layer(model, 4)
    assert start == model.config.num_hidden_layers - 4
    cache = build_cache(model, prompts, tok.pad_token_id, start, "cpu", batch_size=1)  # one at a time: no padding
    assert [h.shape[0] for h in cache] == [len(p) for p in prompts]
    examples = [{"segments": p, "position": 0, "yes_no": yes_no, "hidden": h, "start": start}
                for p, h in zip(prompts, cache)]
    batch = segments.SegmentScorer(tok).collate(examples, tok.pad_token_id)  # padded together: mask keeps padding out
    with torch.no_grad():
        cached = top_segment_logits(model, batch, yes_no, int(batch["start"]))
        full = segments.segment_logits(model, {k: v for k, v in batch.items() if k != "hidden"}, yes_no)
    real = batch["score_mask"]
    torch.testing.assert_close(cached[real], full[real], atol=1e-4, rtol=1e-4)
