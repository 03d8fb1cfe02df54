"""The LLM scorer registry: both shipped scorers are registered, unknown names are explained, the shipped adapter's
scorer loads by name, and a new scorer is one registered class (here a toy one, defined in this test only) that the
reranker and the fine-tuning code use without any other change. No model is loaded."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from agent.llm.prompting import UserSummary
from agent.llm.reranker import LLMReranker
from agent.llm.scorers import SCORERS, Scorer, UnknownScorerError, log_softmax, register_scorer, scorer_class
from agent.llm.scorers.listwise import ListwiseScorer
from agent.llm.scorers.segments import SegmentScorer
from retrieval.candidates.base import Candidate
from retrieval.catalog.schema import Item

LOCAL = SimpleNamespace(tokenizer=None, model_id="stub", llm=object())  # a backend with an in-process model
ENDPOINT = SimpleNamespace(tokenizer=None, model_id="stub")  # an OpenAI-compatible endpoint: no local model


def test_both_shipped_scorers_are_registered_under_their_names():
    assert {"listwise", "segments"} <= set(SCORERS)
    assert scorer_class("listwise") is ListwiseScorer and scorer_class("segments") is SegmentScorer
    assert ListwiseScorer.prompt == "rerank" and SegmentScorer.prompt == "rerank_segments"


def test_an_unknown_scorer_name_lists_the_registered_ones():
    with pytest.raises(UnknownScorerError, match="unknown scorer 'pairwise'; registered scorers: head, listwise, segments"):
        LLMReranker(LOCAL, scorer="pairwise")
    with pytest.raises(UnknownScorerError, match="registered scorers"):
        scorer_class(None)
    from finetune.training.config import check_scorer

    with pytest.raises(ValueError, match="unknown scorer 'pairwise'; registered scorers: head, listwise, segments"):
        check_scorer("pairwise")


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        register_scorer("segments")(type("Another", (SegmentScorer,), {}))
    with pytest.raises(TypeError, match="Scorer subclass"):
        register_scorer("odd")(object)


def test_the_shipped_adapter_names_its_scorer_and_it_loads():
    from agent.llm.loading import ADAPTER_META, resolve_adapter

    meta = json.loads((resolve_adapter("default") / ADAPTER_META).read_text())
    assert meta["scorer"] == "segments"
    ranker = LLMReranker(LOCAL, adapter_meta=meta)
    assert isinstance(ranker.scorer, SegmentScorer) and ranker.weight == meta["fusion_weight"]
    with pytest.raises(ValueError, match='scorer = "listwise"'):  # the segment scorer needs the local model
        LLMReranker(ENDPOINT, adapter_meta=meta)


# --- a third scorer, registered here and nowhere else ----------------------------------------------------------
class ShortestTitleScorer(Scorer):
    """Prefers short titles: a score every step of the pipeline can compute without a model."""

    prompt = "rerank"
    description = "shorter titles score higher"
    training_order = "; the order does not matter"

    def scores(self, users, candidate_titles):
        return [log_softmax(-np.array([len(t) for t in titles], dtype=np.float64)) for titles in candidate_titles]

    def training_example(self, user, titles, target, order):
        return {"input_ids": [len(t) for t in titles], "position": target}

    def collate(self, examples, pad_id):
        import torch

        return {"lengths": torch.tensor([ex["input_ids"] for ex in examples], dtype=torch.float32),
                "position": torch.tensor([ex["position"] for ex in examples])}

    def candidate_logits(self, model, batch):
        return -batch["lengths"] * model.weight


@pytest.fixture
def shortest():
    register_scorer("shortest")(ShortestTitleScorer)
    yield ShortestTitleScorer
    del SCORERS["shortest"]


def _candidates(titles):
    return [Candidate(item=Item(item_id=str(i), title=t), score=1.0 - 0.01 * i) for i, t in enumerate(titles)]


def test_a_new_scorer_reranks_by_name(shortest):
    ranker = LLMReranker(ENDPOINT, scorer="shortest", weight=10.0)
    assert isinstance(ranker.scorer, ShortestTitleScorer) and ranker.describe()["scorer"] == "shortest"
    ranked = ranker.rerank(UserSummary(), _candidates(["A very long title", "Short", "Medium title"]))
    assert [r.candidate.item.title for r in ranked] == ["Short", "Medium title", "A very long title"]
    assert np.exp([r.llm_score for r in ranked]).sum() == pytest.approx(1.0)


def test_a_new_scorer_trains_through_the_finetune_code_unchanged(shortest, ml100k):
    import torch

    from finetune.data.instructions import Instance, InstructionDataset
    from finetune.training.config import check_scorer
    from finetune.training.model import loss_and_accuracy

    check_scorer("shortest")  # a registered scorer passes the [finetune] check without touching it
    scorer = scorer_class("shortest")(None, history_items=3)
    instances = [Instance(user=0, history=(1, 2), candidates=(10, 20, 30), target=t, retriever_hit=True)
                 for t in (10, 20, 30)]
    data = InstructionDataset(instances, scorer, ml100k.catalog, seed=0)
    batch = scorer.collate([data[i] for i in range(len(data))], pad_id=0)
    model = SimpleNamespace(weight=torch.tensor(0.1, requires_grad=True))
    loss, accuracy = loss_and_accuracy(model, batch, "labels", scorer)
    loss.backward()
    lengths = [len(ml100k.catalog.at(i).label) for i in (10, 20, 30)]
    assert batch["lengths"].tolist() == [lengths] * 3
    expected = [-np.log(np.exp(-0.1 * lengths[t]) / np.exp(-0.1 * np.array(lengths)).sum()) for t in range(3)]
    assert float(loss.detach()) == pytest.approx(float(np.mean(expected)), rel=1e-5)
    assert float(accuracy) == pytest.approx(1 / 3) and model.weight.grad is not None
