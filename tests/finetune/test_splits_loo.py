"""Leave-one-out splits: leak-free, stable timestamp ties (file order, never item id)."""
from __future__ import annotations

import numpy as np
import pytest

from finetune.data.splits import leave_one_out


def test_held_out_interactions_never_reach_training(ml100k, ml100k_split):
    split, inter = ml100k_split, ml100k.interactions
    held_out = np.concatenate([split.validation_rows, split.test_rows])
    assert not np.isin(held_out, split.train_rows).any()
    assert len(split.train) + held_out.size == len(inter)  # nothing lost, nothing duplicated
    train_matrix = split.train.to_csr(len(ml100k.catalog)).toarray()
    for rows in (split.validation_rows, split.test_rows):
        # the (user, item) pair of every held-out interaction is absent from the training matrix
        assert train_matrix[inter.users[rows], inter.items[rows]].sum() == 0
    # and held-out events are the latest ones of each user
    train_last = np.zeros(inter.n_users, dtype=np.int64)
    np.maximum.at(train_last, split.train.users, split.train.timestamps)
    assert (train_last <= inter.timestamps[split.validation_rows]).all()
    assert (inter.timestamps[split.validation_rows] <= inter.timestamps[split.test_rows]).all()


def test_cases_expose_exactly_the_allowed_history(ml100k, ml100k_split):
    val, test = ml100k_split.validation_cases(), ml100k_split.test_cases()
    assert len(val) == len(test) == 943
    for v, t in zip(val[:50], test[:50]):
        assert v.user == t.user
        assert t.history == v.history + (v.target,)  # test history = train + validation item
        assert v.target not in v.history and t.target not in t.history
        assert set(v.history) == set(ml100k_split.train.items[ml100k_split.train.users == v.user].tolist())


def test_equal_timestamps_keep_file_order_not_item_id(dataset_factory):
    # all three rated in the same second, in file order 9, 2, 5: id order would make 9 the test item
    dataset = dataset_factory([("u", "9", 100), ("u", "2", 100), ("u", "5", 100), ("v", "1", 1), ("v", "2", 2),
                            ("v", "3", 3)], n_items=9)
    split = leave_one_out(dataset.interactions)
    case = split.test_cases()[0]
    assert dataset.catalog.at(case.target).item_id == "5"
    assert [dataset.catalog.at(i).item_id for i in case.history] == ["9", "2"]


def test_ml100k_ties_follow_file_rows(ml100k, ml100k_split):
    inter, split = ml100k.interactions, ml100k_split
    tied = inter.timestamps[split.validation_rows] == inter.timestamps[split.test_rows]
    assert tied.mean() == pytest.approx(0.44, abs=0.01)  # docs/ARCHITECTURE.md §6: 44% of users
    assert (split.test_rows[tied] > split.validation_rows[tied]).all()  # later file row = later event
    higher_id_last = inter.items[split.test_rows[tied]] > inter.items[split.validation_rows[tied]]
    assert 0.3 < higher_id_last.mean() < 0.7  # ties are broken by the (random) file order, not by id


def test_short_histories_stay_in_train_and_bad_input_is_explained(dataset_factory):
    dataset = dataset_factory([("u", "1", 1), ("u", "2", 2), ("v", "1", 1), ("v", "2", 2), ("v", "3", 3)], n_items=3)
    split = leave_one_out(dataset.interactions)
    assert split.evaluated_users.tolist() == [1]
    assert len(split.train) == 3  # u's two rows + v's first row
    with pytest.raises(ValueError, match="no held-out"):
        split.test_cases(np.array([0]))
    with pytest.raises(ValueError, match="unknown evaluation stage"):
        split.cases("train")
    with pytest.raises(ValueError, match="at least 3"):
        leave_one_out(dataset.interactions, min_interactions=2)
