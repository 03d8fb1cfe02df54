"""No leak: the benchmark's chat agent sees only what precedes the stage's target (validation: train; test: train +
the validation film), and a leaky set-up is caught at either stage."""
from __future__ import annotations

import numpy as np
import pytest

from finetune.data.splits import leave_one_out
from finetune.evaluation.conversational.isolation import (
    LeakError,
    check_agent,
    check_no_leak,
    target_rows,
    visible_histories,
    visible_interactions,
)
from retrieval.catalog.schema import Dataset


@pytest.fixture(scope="module")
def settings(shared_home):
    from retrieval.config import Settings

    # EASE: the leak checks are the point, not the model (SASRec would train once per visible log)
    return Settings.load(home=shared_home, agent={"rerank": False, "explain": "template"},
                         candidates={"collaborative_model": "ease"})


@pytest.fixture(scope="module")
def split(ml100k):
    return leave_one_out(ml100k.interactions)


@pytest.fixture(scope="module")
def service(settings, ml100k):
    from retrieval.service import RetrievalService

    return RetrievalService(settings, dataset=ml100k)


@pytest.fixture(scope="module")
def users(split):
    return split.evaluated_users[:: 97]  # 10 users spread over the log


def _agent(settings, service, path):
    from agent.core import RecommenderAgent
    from agent.storage import Storage

    return RecommenderAgent(settings, service=service, storage=Storage(path / "bench.db"))


@pytest.mark.parametrize("stage", ["validation", "test"])
def test_the_agent_over_the_visible_log_sees_no_target(settings, service, split, users, tmp_path, stage):
    visible = visible_interactions(split, stage)
    agent = _agent(settings, service.with_interactions(visible), tmp_path)
    histories = visible_histories(split, stage, users)
    check_agent(agent, split, users, histories, stage)  # raises on a leak
    inter = agent.service.dataset.interactions
    evaluated = len(split.evaluated_users)
    assert len(inter) == len(split.interactions) - evaluated * (2 if stage == "validation" else 1)
    for user, history in zip(users, histories):
        uid = split.interactions.user_ids[user]
        target = agent.catalog.at(int(split.interactions.items[target_rows(split, stage)[user]])).item_id
        assert target not in agent.user_history(uid)
        assert agent.user_history(uid) == {agent.catalog.at(i).item_id for i in history}
    uid = split.interactions.user_ids[users[0]]
    reply = agent.chat("Recommend me something.", session_id=f"iso-{stage}", user_id=uid)
    assert reply.items and not {i.item_id for i in reply.items} & agent.user_history(uid)


def test_a_leaky_agent_is_detected(settings, service, split, users, tmp_path):
    leaky = _agent(settings, service, tmp_path)  # built over the whole log, held-out targets included
    with pytest.raises(LeakError, match="held-out target"):
        check_agent(leaky, split, users, visible_histories(split, "test", users), "test")


def test_the_validation_film_is_a_leak_at_the_validation_stage(settings, service, split, users, tmp_path):
    test_visible = visible_interactions(split, "test")  # train + the validation film: fine for the last film only
    agent = _agent(settings, service.with_interactions(test_visible), tmp_path)
    check_agent(agent, split, users, visible_histories(split, "test", users), "test")
    with pytest.raises(LeakError, match="held-out target"):
        check_agent(agent, split, users, visible_histories(split, "validation", users), "validation")


def test_popularity_counted_on_the_whole_log_is_a_leak(settings, service, ml100k, split, users):
    from retrieval.service import RetrievalService

    train = visible_interactions(split, "validation")
    # train interactions, but the catalog's popularity still counts the held-out rows
    half_clean = RetrievalService(settings, dataset=Dataset(catalog=ml100k.catalog, interactions=train))
    with pytest.raises(LeakError, match="popularity"):
        check_no_leak(half_clean.dataset.interactions, half_clean.catalog, split, users, "validation")
    # the validation item is no leak of the test target: train + validation passes at the test stage
    with_validation = visible_interactions(split, "test")
    check_no_leak(with_validation, service.with_interactions(with_validation).catalog, split, users, "test")
    assert len(with_validation) == len(train) + np.count_nonzero(split.validation_rows >= 0)
