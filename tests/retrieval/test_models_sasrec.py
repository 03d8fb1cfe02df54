"""SASRec learns a sequential pattern quickly, caches its weights (safetensors + JSON), and rejects bad settings."""
from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

from retrieval.catalog.schema import Catalog, Interactions, Item
from retrieval.models.sasrec import SASRec, training_windows
from retrieval.recommender import UserContext

N_ITEMS = 20
TINY = dict(max_len=8, hidden=16, blocks=1, heads=1, dropout=0.1, lr=1e-2, batch_size=32, max_epochs=12,
            patience=3, seed=0)


def cyclic_log(n_users: int = 80, length: int = 12, seed: int = 0) -> tuple[Interactions, Catalog]:
    """Every user walks the catalog in order (i -> i + 1 mod N) from a random start: a pure sequence signal."""
    rng = np.random.default_rng(seed)
    users, items, stamps = [], [], []
    for u in range(n_users):
        start = rng.integers(N_ITEMS)
        for t in range(length):
            users.append(u)
            items.append((start + t) % N_ITEMS)
            stamps.append(1000 * u + t)
    catalog = Catalog([Item(item_id=str(i), title=f"Item {i}") for i in range(N_ITEMS)])
    inter = Interactions(user_ids=tuple(str(u) for u in range(n_users)), users=np.asarray(users, np.int32),
                         items=np.asarray(items, np.int32), ratings=np.ones(len(users), np.float32),
                         timestamps=np.asarray(stamps, np.int64))
    return inter, catalog


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    inter, catalog = cyclic_log()
    home = tmp_path_factory.mktemp("sasrec-home")
    return SASRec(home=home, **TINY).fit(inter, catalog), inter, catalog, home


def test_learns_the_next_item(trained):
    model, *_ = trained
    probes = [UserContext(history=tuple((s + t) % N_ITEMS for t in range(5))) for s in range(N_ITEMS)]
    scores = model.score(probes)
    for row, probe in enumerate(probes):
        scores[row, list(probe.history)] = -np.inf  # the protocol never recommends the history
    top = scores.argmax(axis=1)
    expected = np.array([(s + 5) % N_ITEMS for s in range(N_ITEMS)])
    assert (top == expected).mean() >= 0.9  # MostPop / random would get about 1 in 20
    assert model.curve[model.best_epoch - 1]["val_ndcg@10"] > 0.8
    assert model.curve[-1]["loss"] < model.curve[0]["loss"]


def test_scores_candidates_consistently(trained):
    model, *_ = trained
    user = [UserContext(history=(3, 4, 5))]
    full = model.score(user)
    cand = np.array([[6, 0, 11]])
    assert np.allclose(model.score(user, cand), full[:, [6, 0, 11]])
    assert np.all(model.score([UserContext()]) == 0)  # no history, no signal


def test_weights_are_cached_as_safetensors_and_reloaded(trained):
    from safetensors.torch import load_file

    model, inter, catalog, home = trained
    assert set((home / "models").iterdir()) == {model.cache_path, model.cache_path.with_suffix(".json")}
    assert model.cache_path.suffix == ".safetensors"
    weights = load_file(str(model.cache_path))  # plain tensors, nothing to unpickle
    assert weights.keys() == model.net.state_dict().keys()
    sidecar = json.loads(model.cache_path.with_suffix(".json").read_text())
    assert sidecar["config"] == model.config and sidecar["best_epoch"] == model.best_epoch
    assert sidecar["curve"] == model.curve
    again = SASRec(home=home, **TINY).fit(inter, catalog)
    assert again.loaded_from_cache and again.best_epoch == model.best_epoch and again.curve == model.curve
    probe = [UserContext(history=(1, 2, 3)), UserContext(history=(7, 8))]
    np.testing.assert_array_equal(again.score(probe), model.score(probe))  # identical, not just close
    other = SASRec(home=home, **{**TINY, "max_epochs": 1}).fit(inter, catalog)  # other config: new file
    assert not other.loaded_from_cache and other.cache_path != model.cache_path


@pytest.mark.parametrize("damage", ["truncated weights", "garbled weights", "garbage sidecar",
                                    "sidecar of another format"])
def test_a_corrupt_cache_is_logged_and_retrained(trained, tmp_path, caplog, damage):
    model, inter, catalog, home = trained
    (tmp_path / "models").mkdir()
    weights = tmp_path / "models" / model.cache_path.name
    sidecar = weights.with_suffix(".json")
    shutil.copy(model.cache_path, weights)
    shutil.copy(model.cache_path.with_suffix(".json"), sidecar)
    if damage == "truncated weights":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "garbled weights":  # same size, valid header: the tensors would load, wrong
        data = bytearray(weights.read_bytes())
        data[-4000:-2000] = bytes(2000)
        weights.write_bytes(bytes(data))
    elif damage == "garbage sidecar":
        sidecar.write_text("{not json")
    else:
        sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "format": 1}))
    with caplog.at_level(logging.WARNING, logger="retrieval.models.sasrec"):
        again = SASRec(home=tmp_path, **TINY).fit(inter, catalog)
    assert not again.loaded_from_cache and "ignoring the unreadable SASRec cache" in caplog.text
    probe = [UserContext(history=(1, 2, 3))]
    np.testing.assert_allclose(again.score(probe), model.score(probe), rtol=1e-5, atol=1e-5)  # seeded retraining
    assert SASRec(home=tmp_path, **TINY).fit(inter, catalog).loaded_from_cache  # the rewritten cache is good


def test_an_old_pickled_cache_is_ignored_with_a_log_line(trained, tmp_path, caplog):
    model, inter, catalog, _ = trained
    (tmp_path / "models").mkdir()
    old = tmp_path / "models" / model.cache_path.with_suffix(".pt").name
    old.write_bytes(b"\x80\x04 a pickle that must never be loaded")
    with caplog.at_level(logging.INFO, logger="retrieval.models.sasrec"):
        again = SASRec(home=tmp_path, **TINY).fit(inter, catalog)
    assert not again.loaded_from_cache and "ignoring the old pickled SASRec cache" in caplog.text
    assert again.cache_path.is_file() and again.cache_path.suffix == ".safetensors"


def test_training_windows_cover_every_prefix():
    inputs, targets = training_windows([[0, 1, 2, 3, 4, 5, 6]], max_len=3)
    assert (targets != -100).sum() == 6  # every item after the first is a target exactly once
    assert sorted(targets[targets != -100].tolist()) == [1, 2, 3, 4, 5, 6]
    assert inputs[0].tolist() == [4, 5, 6] and targets[0].tolist() == [4, 5, 6]  # tokens are item + 1


def test_bad_settings_are_explained():
    with pytest.raises(ValueError, match="divisible"):
        SASRec(hidden=10, heads=3)
    with pytest.raises(ValueError, match="dropout"):
        SASRec(dropout=1.5)
    with pytest.raises(ValueError, match="two or more"):
        training_windows([[1], []], max_len=4)
