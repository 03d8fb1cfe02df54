"""The head scorer with the real model: a distribution over exactly the candidates, independent of their order,
training through cached frozen layers equals the whole model, and the trained head travels in the adapter folder."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from agent.llm.backend import LocalBackend
from agent.llm.prompting import UserSummary
from agent.llm.scorers import create_scorer
from agent.llm.scorers.head import HEAD_FILE, head_module

pytestmark = pytest.mark.slow  # loads the real model

USER = UserSummary(recent=("Star Wars (1977)", "Alien (1979)", "Heat (1995)"), liked=("Fargo (1996)",))
TITLES = ["Aliens (1986)", "Babe (1995)", "Toy Story (1995)", "Return of the Jedi (1983)", "Sabrina (1995)"]


@pytest.fixture(scope="module")
def head_backend(llm):
    torch.manual_seed(0)
    trained = dataclasses.replace(llm, extras={"score_head": head_module(llm.model.config.hidden_size).eval()})
    return LocalBackend(trained, batch_size=4)


def test_scores_are_an_order_free_distribution(head_backend):
    scorer = create_scorer("head", head_backend.tokenizer, backend=head_backend)
    got = scorer.scores([USER], [TITLES])[0]
    assert got.shape == (5,) and np.exp(got).sum() == pytest.approx(1.0, abs=1e-9)
    order = [3, 0, 4, 1, 2]
    again = create_scorer("head", head_backend.tokenizer, backend=head_backend).scores([USER], [[TITLES[i] for i in order]])[0]
    np.testing.assert_allclose(again, got[order], atol=1e-5)
    other = scorer.scores([UserSummary(recent=("Toy Story (1995)",))], [TITLES])[0]
    assert not np.allclose(other, got)  # the user changes the scores


def test_training_logits_with_cached_frozen_layers_equal_the_whole_model(head_backend, catalog):
    llm = head_backend.llm
    scorer = create_scorer("head", llm.tokenizer, history_items=10, distill=(1.0, 0.2))
    scorer.head = llm.extras["score_head"]
    examples = []
    for target in (0, 3):
        ex = scorer.training_example(USER, TITLES, target, order=range(5))
        ex["teacher"] = (2.0, 1.0, 0.5, 0.2, 0.0)
        examples.append(ex)
    ex = scorer.training_example(UserSummary(recent=("Babe (1995)",)), TITLES[:3], 1, order=range(3))
    ex["teacher"] = (0.0, 1.0, 0.5)
    examples.append(ex)
    batch = scorer.collate(examples, llm.tokenizer.pad_token_id)
    with torch.no_grad():
        full = scorer.candidate_logits(llm.model, batch)
        scorer.frozen_start = llm.model.config.num_hidden_layers - 2
        cached_first = scorer.candidate_logits(llm.model, batch)  # fills the per-title cache
        cached_again = scorer.candidate_logits(llm.model, batch)  # reads it
    real = batch["score_mask"]
    assert not real[2, 3:].any()
    torch.testing.assert_close(cached_first[real], full[real], atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(cached_again, cached_first)
    # the same logits the serving path computes (log-softmax of them)
    serving = create_scorer("head", llm.tokenizer, backend=head_backend).scores([USER], [TITLES])[0]
    row = full[0].numpy()
    np.testing.assert_allclose(serving, row - np.log(np.exp(row - row.max()).sum()) - row.max(), atol=2e-2)
    loss, _ = scorer.candidate_loss(full, batch)
    assert torch.isfinite(loss)
    scorer.llm_frozen = True  # head-only phase of fine-tuning: embeddings once, no gradient into the LLM
    frozen = scorer.candidate_logits(llm.model, batch)
    torch.testing.assert_close(frozen[real], full[real], atol=2e-2, rtol=2e-2)
    assert frozen.requires_grad and all(p.grad is None for p in llm.model.parameters())


def test_the_head_is_saved_beside_the_adapter_and_loaded_from_it(head_backend, tmp_path):
    llm = head_backend.llm
    trainer_side = create_scorer("head", llm.tokenizer)
    trainer_side.head = llm.extras["score_head"]
    trainer_side.save_trainable(tmp_path)
    assert (tmp_path / HEAD_FILE).is_file()
    served = LocalBackend(dataclasses.replace(llm, extras={}, adapter=tmp_path), batch_size=4)
    a = create_scorer("head", llm.tokenizer, backend=served).scores([USER], [TITLES])[0]
    b = create_scorer("head", llm.tokenizer, backend=head_backend).scores([USER], [TITLES])[0]
    np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="needs a trained head"):
        create_scorer("head", llm.tokenizer, backend=LocalBackend(dataclasses.replace(llm, extras={}, adapter=None)))
