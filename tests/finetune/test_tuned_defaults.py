"""Tuned hyper-parameters are the models' own defaults: the eval registry and serving build identical models."""
from __future__ import annotations

import pytest

from finetune.data.splits import leave_one_out
from finetune.evaluation.rankers import RANKERS, BuildContext
from retrieval.candidates.collaborative import CollaborativeGenerator
from retrieval.candidates.filtering import CatalogArrays
from retrieval.models import EASE, ItemKNN, SASRec, SASRecEASE, SemanticRanker
from retrieval.recommender import create

TUNED_SASREC = dict(max_len=50, hidden=64, blocks=2, heads=1, dropout=0.2, lr=1e-3, batch_size=128, max_epochs=200,
                    patience=10)


def test_model_defaults_are_the_tuned_values():
    assert {k: SASRec().config[k] for k in TUNED_SASREC} == TUNED_SASREC
    assert EASE().l2 == 100.0 and EASE().recency_halflife is None
    knn = ItemKNN()
    assert (knn.neighbours, knn.shrink, knn.weighting) == (10, 0.0, "tfidf")
    semantic = SemanticRanker()
    assert (semantic.recent, semantic.text) == (5, "label")


def test_presets_are_named_configurations_of_a_model():
    recency = create("ease-recency")
    assert isinstance(recency, EASE) and (recency.l2, recency.recency_halflife) == (500.0, 5.0)
    assert create("ease-recency", l2=50.0).l2 == 50.0  # the caller's parameters still win
    blend = create("sasrec+ease")
    assert isinstance(blend, SASRecEASE) and blend.ease_weight == 0.2
    assert blend.members[1] == (blend.ease, 0.2) and blend.ease.get_params() == EASE().get_params()
    assert blend.sasrec.get_params() == SASRec().get_params()
    with pytest.raises(ValueError, match="unknown recommender 'ease-recent'.*ease-recency"):
        create("ease-recent")


@pytest.fixture
def built_sasrecs(monkeypatch):
    """SASRec models as constructed (fit replaced by a recorder: the parameters are the point, not training)."""
    built: list[SASRec] = []

    def recording_fit(self, train, catalog, validation=None, progress=None):
        self.n_items = len(catalog)
        built.append(self)
        return self

    monkeypatch.setattr(SASRec, "fit", recording_fit)
    return built


def test_eval_registry_and_serving_build_identical_sasrec(built_sasrecs, tiny_dataset, tmp_path):
    split = leave_one_out(tiny_dataset.interactions)
    ctx = BuildContext(dataset=tiny_dataset, split=split, home=tmp_path, seed=0, log=lambda msg: None)
    evaluated = RANKERS["sasrec"].build(ctx, {})  # no [eval.params.sasrec]: the registry adds no parameters
    serving = CollaborativeGenerator(CatalogArrays(tiny_dataset.catalog), model="sasrec")
    serving.fit(tiny_dataset.interactions, tiny_dataset.catalog)
    assert built_sasrecs == [evaluated, serving.model]
    assert evaluated.get_params() == serving.model.get_params()
    assert {k: evaluated.get_params()[k] for k in TUNED_SASREC} == TUNED_SASREC

    blended = RANKERS["sasrec+ease"].build(ctx, {})
    assert blended.ease_weight == 0.2 and blended.sasrec.get_params() == serving.model.get_params()
    assert blended.ease.l2 == EASE().l2
    overridden = RANKERS["sasrec"].build(ctx, {"max_len": 200})  # [eval.params.sasrec] still overrides
    assert overridden.config["max_len"] == 200


def test_the_chat_serves_the_eval_registrys_sasrec_ease(built_sasrecs, tiny_dataset, tmp_path):
    """The chat's collaborative model (the service's default) is `marquee eval`'s best ranker, same parameters."""
    from types import SimpleNamespace

    from retrieval.config import CandidateConfig, CatalogConfig, EmbeddingConfig, StoreConfig
    from retrieval.service import RetrievalService

    split = leave_one_out(tiny_dataset.interactions)
    ctx = BuildContext(dataset=tiny_dataset, split=split, home=tmp_path, seed=0, log=lambda msg: None)
    evaluated = RANKERS["sasrec+ease"].build(ctx, {})
    settings = SimpleNamespace(home=tmp_path, catalog=CatalogConfig(), embedding=EmbeddingConfig(),
                               store=StoreConfig(), candidates=CandidateConfig())
    serving = RetrievalService(settings, dataset=tiny_dataset).collaborative.model
    assert CandidateConfig().collaborative_model == "sasrec+ease" and isinstance(serving, SASRecEASE)
    assert serving.get_params() == evaluated.get_params()
    assert serving.sasrec.home == evaluated.sasrec.home == tmp_path  # both cache (and find) weights in MARQUEE_HOME
    assert built_sasrecs == [evaluated.sasrec, serving.sasrec]


def test_eval_registry_builds_classical_models_from_their_defaults(tiny_dataset, tmp_path):
    split = leave_one_out(tiny_dataset.interactions)
    ctx = BuildContext(dataset=tiny_dataset, split=split, home=tmp_path, seed=0, log=lambda msg: None)
    assert RANKERS["itemknn"].build(ctx, {}).get_params() == ItemKNN().get_params()
    assert RANKERS["ease"].build(ctx, {}).get_params() == {"l2": 100.0}
    assert RANKERS["ease-recency"].build(ctx, {}).get_params() == {"l2": 500.0, "recency_halflife": 5.0}
    overridden = RANKERS["ease-recency"].build(ctx, {"recency_halflife": 1.0})  # [eval.params] over the preset
    assert overridden.get_params() == {"l2": 500.0, "recency_halflife": 1.0}
