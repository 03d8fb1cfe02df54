"""Where the chat's collaborative model comes from: the default catalog's SASRec ships pre-trained (package data,
keyed by its log), any other log trains on first use with a progress report and is cached in MARQUEE_HOME, and a
log too small for SASRec falls back to EASE."""
from __future__ import annotations

import logging

import numpy as np

from retrieval.candidates.base import CandidateRequest
from retrieval.candidates.collaborative import CollaborativeGenerator, TrainingProgress
from retrieval.candidates.filtering import CatalogArrays
from retrieval.catalog.schema import Catalog, Dataset, Interactions, Item
from retrieval.models import EASE, SASRecEASE
from retrieval.models.sasrec import PRETRAINED


def _dataset(sequences: dict[str, list[int]], n_items: int = 12) -> Dataset:
    catalog = Catalog([Item(str(i), f"Movie {i}", 1990 + i, ("Drama",)) for i in range(n_items)], name="custom")
    user_ids = tuple(sequences)
    users, items, stamps = [], [], []
    for u, seq in enumerate(sequences.values()):
        users += [u] * len(seq)
        items += seq
        stamps += list(range(len(seq)))
    return Dataset(catalog=catalog, interactions=Interactions(
        user_ids=user_ids, users=np.asarray(users, np.int32), items=np.asarray(items, np.int32),
        ratings=np.ones(len(items), np.float32), timestamps=np.asarray(stamps, np.int64)))


def test_the_default_catalog_uses_the_shipped_weights_and_writes_nothing(ml100k, tmp_path):
    generator = CollaborativeGenerator(CatalogArrays(ml100k.catalog), home=tmp_path)
    generator.fit(ml100k.interactions, ml100k.catalog)
    sasrec = generator.model.sasrec
    assert isinstance(generator.model, SASRecEASE) and sasrec.loaded_from_cache
    assert sasrec.cache_path.parent == PRETRAINED and sasrec.cache_path.with_suffix(".json").is_file()
    assert not (tmp_path / "models").exists()  # package data is read, never copied or rewritten


def test_another_log_trains_on_first_use_with_progress_then_loads(tmp_path):
    rng = np.random.default_rng(0)
    data = _dataset({f"u{n}": [int(i) for i in rng.permutation(12)[:6]] for n in range(20)})
    epochs = []
    first = CollaborativeGenerator(CatalogArrays(data.catalog), home=tmp_path,
                                   progress=lambda name, point: epochs.append((name, point["epoch"])))
    first.fit(data.interactions, data.catalog)
    assert epochs and epochs[0] == ("sasrec+ease", 1) and not first.model.sasrec.loaded_from_cache
    cached = first.model.sasrec.cache_path
    assert cached.parent == tmp_path / "models" and cached.is_file()
    again = CollaborativeGenerator(CatalogArrays(data.catalog), home=tmp_path,
                                   progress=lambda name, point: epochs.append(point))
    again.fit(data.interactions, data.catalog)
    assert again.model.sasrec.loaded_from_cache and again.model.sasrec.cache_path == cached
    assert len(epochs) == first.model.sasrec.curve[-1]["epoch"]  # no epoch trained the second time
    progress = TrainingProgress("custom")  # the service's reporter: one line while training, ended by fit
    progress("sasrec+ease", {"epoch": 1, "val_ndcg@10": 0.1})
    assert progress.bar is not None  # (tqdm draws it only in a terminal)
    CollaborativeGenerator(CatalogArrays(data.catalog), home=tmp_path, progress=progress).fit(data.interactions,
                                                                                            data.catalog)
    assert progress.bar is None


def test_a_log_too_small_for_sasrec_falls_back_to_ease(tmp_path, caplog):
    data = _dataset({"a": [0, 1], "b": [1, 2], "c": [3]})  # nobody has the 3 items early stopping needs
    with caplog.at_level(logging.WARNING, logger="retrieval.candidates.collaborative"):
        generator = CollaborativeGenerator(CatalogArrays(data.catalog), home=tmp_path).fit(data.interactions,
                                                                                           data.catalog)
    assert isinstance(generator.model, EASE) and "using ease" in caplog.text
    scores = generator.scores(CandidateRequest(user_id="a"))  # a saw 0 and 1; b saw 1 then 2
    assert scores is not None and np.argmax(np.where(np.isin(np.arange(12), [0, 1]), -np.inf, scores)) == 2
