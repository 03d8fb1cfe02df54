"""Fixtures of the evaluation tests: the real ML-100k split, and tiny hand-made datasets."""
from __future__ import annotations

import numpy as np
import pytest

from finetune.data.splits import leave_one_out
from retrieval.catalog.schema import Catalog, Dataset, Interactions, Item


@pytest.fixture(scope="session")
def ml100k_split(ml100k):
    return leave_one_out(ml100k.interactions)


def make_dataset(rows: list[tuple[str, str, int]], n_items: int, genres: dict[int, tuple[str, ...]] | None = None,
                 name: str = "tiny") -> Dataset:
    """Dataset from (user_id, item_id, timestamp) rows in file order; item ids are '1'…'n_items'."""
    genres = genres or {}
    catalog = Catalog([Item(item_id=str(i + 1), title=f"Movie {i + 1}", year=1990 + i,
                            genres=genres.get(i, ("Drama",))) for i in range(n_items)], name=name)
    user_ids: dict[str, int] = {}
    users = [user_ids.setdefault(u, len(user_ids)) for u, _, _ in rows]
    inter = Interactions(user_ids=tuple(user_ids), users=np.asarray(users, dtype=np.int32),
                         items=np.asarray([catalog.index_of(i) for _, i, _ in rows], dtype=np.int32),
                         ratings=np.ones(len(rows), dtype=np.float32),
                         timestamps=np.asarray([t for _, _, t in rows], dtype=np.int64))
    return Dataset(catalog=catalog, interactions=inter)


@pytest.fixture
def dataset_factory():
    """`make_dataset` as a fixture, so test modules need not import this conftest."""
    return make_dataset


@pytest.fixture
def tiny_dataset() -> Dataset:
    """4 users × 8 items. User a re-watches item 3 as their last (test) interaction."""
    rows = [("a", "1", 10), ("a", "3", 11), ("a", "2", 12), ("a", "4", 13), ("a", "3", 14),
            ("b", "5", 10), ("b", "6", 11), ("b", "7", 12), ("b", "8", 13),
            ("c", "2", 10), ("c", "4", 10), ("c", "6", 10), ("c", "8", 10),
            ("d", "1", 5), ("d", "8", 6), ("d", "7", 7), ("d", "5", 8)]
    genres = {0: ("Action",), 1: ("Action", "Sci-Fi"), 2: ("Comedy",), 3: ("Drama",), 4: ("Romance",),
              5: ("Action",), 6: ("Sci-Fi",), 7: ("Horror",)}
    return make_dataset(rows, 8, genres)
