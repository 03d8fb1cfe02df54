"""`RetrievalService.with_interactions`: the same catalog and index, every log-based part from another log
(an evaluation's train split), so a held-out interaction cannot reach what is built on it."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from retrieval.candidates.base import CandidateRequest
from retrieval.catalog.schema import Interactions
from retrieval.config import CandidateConfig, CatalogConfig, EmbeddingConfig, StoreConfig
from retrieval.service import RetrievalService


@pytest.fixture(scope="module")
def service(shared_home) -> RetrievalService:
    settings = SimpleNamespace(home=shared_home, catalog=CatalogConfig(), embedding=EmbeddingConfig(),
                               store=StoreConfig(), candidates=CandidateConfig())
    svc = RetrievalService.from_config(settings)
    svc.ensure_index(progress=False)
    return svc


@pytest.fixture(scope="module")
def held_out(service):
    """The log without each user's last interaction (stable time order), and those last rows."""
    inter = service.dataset.interactions
    last = np.array([rows[-1] for rows in inter.chronological() if len(rows)])
    keep = np.setdiff1d(np.arange(len(inter)), last)
    train = Interactions(user_ids=inter.user_ids, users=inter.users[keep], items=inter.items[keep],
                         ratings=inter.ratings[keep], timestamps=inter.timestamps[keep])
    return train, last


def test_log_based_parts_come_from_the_given_log_only(service, held_out):
    train, last = held_out
    live = service.store.status().collection
    # EASE instead of the default SASRec+EASE: which log a model is fitted on does not depend on the model, and
    # SASRec would train from scratch on this split (minutes); tests/retrieval/test_ranking.py trains SASRec.
    derived = service.with_interactions(train, candidates=CandidateConfig(collaborative_model="ease"))
    assert derived.dataset.interactions is train
    assert derived.catalog.item_ids == service.catalog.item_ids
    assert [it.popularity for it in derived.catalog] == np.bincount(train.items, minlength=len(derived.catalog)).tolist()
    full = np.bincount(service.dataset.interactions.items, minlength=len(service.catalog))
    assert [it.popularity for it in service.catalog] == full.tolist()  # the original service is untouched
    assert derived.store is service.store  # content only: one index for both

    inter = service.dataset.interactions
    row = int(last[0])
    user_id, target = inter.user_ids[inter.users[row]], service.catalog.at(int(inter.items[row])).item_id
    request = CandidateRequest(user_id=user_id)
    assert target in service.retriever.resolve(request).history  # the full log knows the held-out item…
    assert target not in derived.retriever.resolve(request).history  # …the train-only service does not
    seen = set(derived.retriever.resolve(request).history)
    picks = derived.candidates(request, k=20)
    assert picks and not seen & {c.item.item_id for c in picks}  # its own (train) history is excluded
    assert service.store.status().collection == live  # the derived catalog's popularity never rebuilt the index


def test_candidate_settings_may_differ_and_bad_logs_are_refused(service, held_out):
    train, _ = held_out
    derived = service.with_interactions(train, candidates=CandidateConfig(count=7, collaborative_model="ease"))
    assert derived.config.count == 7 and service.config.count == CandidateConfig().count
    assert len(derived.candidates(CandidateRequest(query="space adventure"))) == 7
    outside = Interactions(user_ids=("u",), users=np.zeros(1, np.int32), items=np.array([len(service.catalog)], np.int32),
                           ratings=np.ones(1, np.float32), timestamps=np.zeros(1, np.int64))
    with pytest.raises(ValueError, match="outside catalog"):
        service.with_interactions(outside)
