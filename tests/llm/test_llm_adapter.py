"""A tiny LoRA adapter trained here on the reranker's own training examples: it moves the clearly matching
candidate to the top, and saving + loading it (the way `marquee` loads adapters) gives identical scores."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from agent.llm.backend import LocalBackend
from agent.llm.loading import LoadedModel, load_model_uncached
from agent.llm.prompting import LabelSet, UserSummary
from agent.llm.scorers.listwise import build_rerank_prompt, training_example
from agent.llm.reranker import LLMReranker

pytestmark = pytest.mark.slow  # trains a LoRA for 12 steps (~1 min on 2 free cores)

MATCH = "Toy Story (1995)"
OTHERS = ["Heat (1995)", "Fargo (1996)", "Casablanca (1942)", "Alien (1979)", "Babe (1995)"]
USER = UserSummary(request="a family film")


def lists():
    """The match at every position of a 4-candidate list, so a position prior cannot fit the data."""
    return [((OTHERS * 2)[pos:pos + 3][:pos] + [MATCH] + (OTHERS * 2)[pos:pos + 3][pos:], pos) for pos in range(4)]


@pytest.fixture(scope="module")
def trained(shared_home, tmp_path_factory):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    base = load_model_uncached(home=shared_home, adapter="none", dtype="float32")
    tok = base.tokenizer
    labels = LabelSet.for_tokenizer(tok, 20)
    model = get_peft_model(base.model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                  lora_dropout=0.0))
    examples = [training_example(tok, build_rerank_prompt(tok, USER, titles, labels=labels), pos)
                for titles, pos in lists()]
    width = max(len(e["input_ids"]) for e in examples)
    pad = lambda key, value: torch.tensor([e[key] + [value] * (width - len(e[key])) for e in examples])  # noqa: E731
    batch = dict(input_ids=pad("input_ids", tok.pad_token_id), attention_mask=pad("attention_mask", 0),
                 labels=pad("labels", -100))  # right padding: every label token keeps its true position
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    losses = []
    for _ in range(STEPS):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    model.eval()
    folder = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(folder)
    (folder / "marquee.json").write_text(json.dumps({"fusion_weight": 0.7, "prompt_version": "1"}))
    live = LoadedModel(model=model, tokenizer=tok, name="smollm2-135m", device="cpu", dtype=torch.float32)
    return live, folder, losses


STEPS = 12


def test_training_lowers_the_loss(trained):
    _, _, losses = trained
    assert losses[-1] < 0.5 * losses[0]


def test_adapter_puts_the_clear_match_first(trained, backend):
    live, _, _ = trained
    tuned = LLMReranker(LocalBackend(live), weight=1.0)
    zero_shot = LLMReranker(backend, weight=1.0)
    hits = 0
    for titles, pos in lists():
        scores = tuned.llm_scores([USER], [titles])[0]
        assert int(np.argmax(scores)) == pos, (titles, scores)
        hits += int(np.argmax(zero_shot.llm_scores([USER], [titles])[0]) == pos)
    assert hits < len(lists())  # the base model alone does not solve it: the adapter did


def test_adapter_round_trip_gives_identical_scores(trained, shared_home):
    live, folder, _ = trained
    loaded = load_model_uncached(home=shared_home, adapter=str(folder), dtype="float32")
    assert loaded.adapter == folder and loaded.adapter_meta["fusion_weight"] == 0.7
    from_disk = LLMReranker(LocalBackend(loaded), adapter_meta=loaded.adapter_meta)
    in_memory = LLMReranker(LocalBackend(live), weight=0.7)
    assert from_disk.weight == 0.7  # the adapter's tuned fusion weight is used when the config sets none
    for titles, _ in lists():
        np.testing.assert_allclose(from_disk.llm_scores([USER], [titles])[0],
                                   in_memory.llm_scores([USER], [titles])[0], rtol=0, atol=1e-5)
