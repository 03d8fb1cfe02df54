"""Typed catalog items and interactions.

`Catalog` keeps items in a fixed order so that an item's position (its *index*) can address rows of
score matrices; `item_id` (a string) is the stable public identifier.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True, slots=True)
class Item:
    item_id: str
    title: str
    year: int | None = None
    genres: tuple[str, ...] = ()
    description: str = ""
    description_generated: bool = False  # True when an LLM wrote `description` (marquee enrich)
    popularity: int = 0  # number of interactions in the loaded log
    extra: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def label(self) -> str:
        """`Title (1995)`: how the item is shown to people and to the LLM."""
        return f"{self.title} ({self.year})" if self.year else self.title

    def document(self) -> str:
        """The text that is embedded for semantic search."""
        parts = [self.label]
        if self.genres:
            parts.append("Genres: " + ", ".join(self.genres) + ".")
        if self.description:
            parts.append(self.description)
        return " ".join(parts)

    def with_(self, **changes) -> "Item":
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Interactions:
    """An interaction log in file order (row order matters: it breaks timestamp ties, docs/ARCHITECTURE.md §6).

    `users` and `items` are dense indices: users into `user_ids`, items into the catalog.
    """

    user_ids: tuple[str, ...]
    users: np.ndarray  # int32, index into user_ids
    items: np.ndarray  # int32, index into the catalog
    ratings: np.ndarray  # float32
    timestamps: np.ndarray  # int64

    def __len__(self) -> int:
        return int(self.users.shape[0])

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    def to_csr(self, n_items: int, rows: np.ndarray | None = None) -> sp.csr_matrix:
        """Binary user × item matrix (implicit feedback) of the selected rows (all by default)."""
        users, items = (self.users, self.items) if rows is None else (self.users[rows], self.items[rows])
        data = np.ones(len(users), dtype=np.float32)
        m = sp.csr_matrix((data, (users, items)), shape=(self.n_users, n_items), dtype=np.float32)
        m.data[:] = 1.0  # repeated (user, item) pairs count once
        return m

    def chronological(self) -> list[np.ndarray]:
        """Per user, the row numbers sorted by timestamp with a STABLE sort (file order breaks ties)."""
        order = np.lexsort((np.arange(len(self)), self.timestamps, self.users))
        bounds = np.searchsorted(self.users[order], np.arange(self.n_users + 1))
        return [order[bounds[u]:bounds[u + 1]] for u in range(self.n_users)]


class Catalog:
    """An ordered, immutable set of items with id and index look-ups."""

    def __init__(self, items: Iterable[Item], name: str = "catalog"):
        self.name = name
        self._items: tuple[Item, ...] = tuple(items)
        self._index = {it.item_id: i for i, it in enumerate(self._items)}
        if len(self._index) != len(self._items):
            raise ValueError("duplicate item ids in catalog")

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self._items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._index

    def __getitem__(self, item_id: str) -> Item:
        return self._items[self._index[item_id]]

    def get(self, item_id: str) -> Item | None:
        i = self._index.get(item_id)
        return None if i is None else self._items[i]

    def at(self, index: int) -> Item:
        return self._items[index]

    def index_of(self, item_id: str) -> int:
        return self._index[item_id]

    @property
    def items(self) -> tuple[Item, ...]:
        return self._items

    @property
    def item_ids(self) -> list[str]:
        return [it.item_id for it in self._items]

    def genres(self) -> list[str]:
        return sorted({g for it in self._items for g in it.genres})

    def replace_items(self, items: Iterable[Item]) -> "Catalog":
        """A new catalog with some items replaced by id (e.g. enriched descriptions)."""
        updated = {it.item_id: it for it in items}
        return Catalog((updated.get(it.item_id, it) for it in self._items), name=self.name)


@dataclass(frozen=True)
class Dataset:
    catalog: Catalog
    interactions: Interactions
    user_features: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
