"""Known users' histories: one resolver, stable time order (file order breaks timestamp ties), used by the
collaborative generator, the hybrid retriever and the evaluation's split alike."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval.candidates.base import CandidateRequest
from retrieval.candidates.collaborative import CollaborativeGenerator
from retrieval.candidates.filtering import CatalogArrays
from retrieval.catalog.schema import Interactions
from retrieval.histories import UserHistories, ordered_union


def log(rows, user_ids=("a", "b", "idle")):
    """rows: (user index, item index, timestamp) in file order."""
    users, items, stamps = (np.array(col) for col in zip(*rows))
    return Interactions(user_ids=tuple(user_ids), users=users.astype(np.int32), items=items.astype(np.int32),
                        ratings=np.ones(len(rows), dtype=np.float32), timestamps=stamps.astype(np.int64))


def test_time_order_with_file_order_breaking_ties():
    histories = UserHistories(log([(0, 9, 50), (1, 4, 10), (0, 3, 20), (0, 7, 20), (0, 1, 20), (0, 2, 5)]))
    # items 3, 7, 1 share a timestamp: they keep the file's order, never item-id order (1, 3, 7)
    assert histories.of("a") == (2, 3, 7, 1, 9)
    assert histories.of("b") == (4,)
    assert histories.recent("a", 2) == (1, 9) and histories.recent("a", 0) == ()


def test_unknown_and_idle_users_have_no_history():
    histories = UserHistories(log([(0, 1, 1)]))
    assert histories.knows("a")
    assert not histories.knows("idle") and histories.of("idle") == ()  # in the id list, nothing logged
    assert not histories.knows("nobody") and histories.of("nobody") == () and not histories.knows(None)


def test_an_item_logged_twice_counts_once_at_its_latest_time():
    histories = UserHistories(log([(0, 5, 1), (0, 6, 2), (0, 5, 3), (0, 8, 4)]))
    assert histories.of("a") == (6, 5, 8)


def test_ordered_union_keeps_first_appearances():
    assert ordered_union((3, 1), np.array([1, 4]), [3, 2]) == (3, 1, 4, 2)


@pytest.fixture(scope="module")
def ml_histories(ml100k):
    return UserHistories(ml100k.interactions)


def test_the_chat_sees_the_same_order_as_the_evaluation(ml100k, ml_histories):
    from finetune.data.splits import leave_one_out

    split = leave_one_out(ml100k.interactions)
    cases = split.test_cases()
    assert len(cases) == 943
    for case in cases:
        assert ml_histories.of(case.user_id) == (*case.history, case.target)


def test_real_timestamp_ties_keep_the_file_order(ml100k, ml_histories):
    inter = ml100k.interactions
    tied = 0
    for u, uid in enumerate(inter.user_ids[:100]):
        rows = np.flatnonzero(inter.users == u)  # file order
        got = ml_histories.of(uid)
        position = {item: p for p, item in enumerate(got)}
        for r, s in zip(rows, rows[1:]):
            if inter.timestamps[r] == inter.timestamps[s]:
                tied += 1
                assert position[int(inter.items[r])] < position[int(inter.items[s])]
    assert tied > 100  # ML-100k has many same-second ratings: the rule is exercised


def test_collaborative_and_hybrid_read_the_resolver(ml100k, ml_histories):
    uid = ml100k.interactions.user_ids[5]
    collaborative = CollaborativeGenerator(CatalogArrays(ml100k.catalog)).fit(ml100k.interactions, ml100k.catalog)
    extra = ml100k.catalog.at(1500).item_id  # an item this user never logged, told in the request
    assert extra not in {ml100k.catalog.at(i).item_id for i in ml_histories.of(uid)}
    got = collaborative.history_of(CandidateRequest(user_id=uid, history=(extra,)))
    assert tuple(got) == (*ml_histories.of(uid), 1500)

    from retrieval.candidates.hybrid import HybridRetriever

    hybrid = HybridRetriever(ml100k.catalog, collaborative=collaborative)
    resolved = hybrid.resolve(CandidateRequest(user_id=uid, history=(extra,)))
    assert resolved.history == (*(ml100k.catalog.at(i).item_id for i in ml_histories.of(uid)), extra)
