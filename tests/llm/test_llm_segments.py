"""The segment scorer: every candidate scored in one pass, exactly as if it were alone, order-free, trainable."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from agent.llm.scorers import segments
from agent.llm.backend import LocalBackend
from agent.llm.fusion import Fusion
from agent.llm.loading import LoadedModel, load_model_uncached
from agent.llm.prompting import UserSummary
from agent.llm.reranker import LLMReranker

USER = UserSummary(recent=("Star Wars (1977)", "Alien (1979)", "Terminator, The (1984)"), request="space films")
TITLES = ["Aliens (1986)", "Sense and Sensibility (1995)", "Return of the Jedi (1983)", "Babe (1995)"]


@pytest.fixture(scope="module")
def exact_backend(shared_home):
    """float32, so that 'the same numbers as separate prompts' can be checked tightly."""
    return LocalBackend(load_model_uncached(home=shared_home, adapter="none", dtype="float32"), batch_size=4)


def test_the_block_mask_keeps_segments_apart(exact_backend):
    prompt = segments.build_segment_prompt(exact_backend.tokenizer, USER, TITLES)
    batch = segments.collate([prompt, segments.build_segment_prompt(exact_backend.tokenizer, USER, TITLES[:2])], 0)
    mask, seg = batch["attention_mask"][0, 0], torch.tensor(prompt.segment_ids)
    for q in range(len(prompt)):
        for k in range(len(prompt)):
            expected = k <= q and (seg[k] == segments.PREFIX_SEGMENT or seg[k] == seg[q])
            assert bool(mask[q, k]) == bool(expected)
    assert batch["score_mask"].tolist() == [[True] * 4, [True, True, False, False]]  # padded candidates marked
    # positions restart after the prefix for every candidate
    starts = [prompt.position_ids[i] for i in range(1, len(prompt)) if prompt.segment_ids[i] != prompt.segment_ids[i - 1]]
    assert len(set(starts)) == 1 and len(starts) == len(TITLES)


def test_one_pass_equals_one_prompt_per_candidate(exact_backend):
    tok = exact_backend.tokenizer
    packed = segments.score_segments(exact_backend, [segments.build_segment_prompt(tok, USER, TITLES)])[0]
    alone = [segments.score_segments(exact_backend, [segments.build_segment_prompt(tok, USER, [t])])[0][0]
             for t in TITLES]
    np.testing.assert_allclose(packed, alone, atol=1e-3)


def test_scores_do_not_depend_on_candidate_order(exact_backend):
    ranker = LLMReranker(exact_backend, scorer="segments")
    forward = ranker.llm_scores([USER], [TITLES])[0]
    backward = ranker.llm_scores([USER], [TITLES[::-1]])[0][::-1]
    np.testing.assert_allclose(forward, backward, atol=1e-3)
    assert forward.shape == (4,) and np.isclose(np.exp(forward).sum(), 1.0)  # a distribution over the candidates


def test_batched_users_match_single_users(exact_backend):
    tok = exact_backend.tokenizer
    other = UserSummary(recent=("Babe (1995)",))
    prompts = [segments.build_segment_prompt(tok, USER, TITLES), segments.build_segment_prompt(tok, other, TITLES[:3])]
    together = segments.score_segments(exact_backend, prompts)
    for prompt, scores in zip(prompts, together):
        np.testing.assert_allclose(scores, segments.score_segments(exact_backend, [prompt])[0], atol=1e-3)


@pytest.mark.slow
def test_a_few_lora_steps_through_the_training_loss_put_the_match_first(shared_home):
    """The trainer's collate + loss on segment examples: the target wins at every list position."""
    from peft import LoraConfig, get_peft_model

    from finetune.training.model import loss_and_accuracy

    torch.manual_seed(0)
    base = load_model_uncached(home=shared_home, adapter="none", dtype="float32")
    tok = base.tokenizer
    user = UserSummary(request="a family film")
    match, others = "Toy Story (1995)", ["Heat (1995)", "Fargo (1996)", "Casablanca (1942)"]
    lists = [(others[:pos] + [match] + others[pos:], pos) for pos in range(4)]
    scorer = segments.SegmentScorer(tok)
    examples = [scorer.training_example(user, titles, pos, order=range(len(titles))) for titles, pos in lists]
    model = get_peft_model(base.model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                  lora_dropout=0.0))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    batch = scorer.collate(examples, tok.pad_token_id)
    losses = []
    for _ in range(8):
        loss, _ = loss_and_accuracy(model, batch, "labels", scorer)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    model.eval()
    assert losses[-1] < 0.5 * losses[0]
    tuned = LLMReranker(LocalBackend(LoadedModel(model=model, tokenizer=tok, name="smollm2-135m",
                                                      device="cpu", dtype=torch.float32)), scorer="segments")
    for titles, pos in lists:
        assert int(np.argmax(tuned.llm_scores([user], [titles])[0])) == pos


def test_weight_zero_skips_the_model_and_keeps_the_retriever_order():
    from retrieval.recommender import UserContext

    class NoModel:  # no model, no scorer: any forward pass would fail loudly
        tokenizer = None
        model_id = "none"

    class Base:
        def score(self, users, candidates=None):
            return np.tile(np.linspace(1.0, 0.0, 30), (len(users), 1))

    class Catalog:
        def at(self, i):
            return type("Item", (), {"label": f"Film {i} (1990)"})()

    ranker = LLMReranker.__new__(LLMReranker)
    ranker.backend, ranker.max_candidates, ranker.base, ranker.catalog = NoModel(), 20, Base(), Catalog()
    ranker.fusion = Fusion(weight=0.0)  # the weight lives in the fusion (agent/llm/fusion.py)
    ranker.lists_seen = ranker.lists_scored = 0  # the gate-coverage counters the constructor sets
    ranker.history_items = 10
    ranker.summary = lambda user: UserSummary()
    scores = ranker.score([UserContext(history=(3, 5))])
    order = [int(i) for i in np.argsort(-scores[0], kind="stable") if i not in (3, 5)]
    assert order == [i for i in range(30) if i not in (3, 5)]


def test_an_endpoint_backend_asks_for_the_listwise_scorer(backend):
    class Endpoint:  # what RemoteBackend offers: a tokenizer and label log-probs, no local model
        tokenizer = backend.tokenizer
        model_id = "remote"

    with pytest.raises(ValueError, match='scorer = "listwise"'):
        LLMReranker(Endpoint(), scorer="segments")
    assert LLMReranker(Endpoint(), scorer="listwise").scorer.name == "listwise"
