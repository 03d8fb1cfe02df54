"""Beyond-accuracy figures of recommendation lists: coverage, genre diversity, long-tail reach, novelty."""
from __future__ import annotations

import numpy as np

from retrieval.catalog.schema import Catalog
from retrieval.ranking import NO_ITEM


def genre_matrix(catalog: Catalog) -> np.ndarray:
    genres = catalog.genres()
    col = {g: j for j, g in enumerate(genres)}
    m = np.zeros((len(catalog), max(len(genres), 1)), dtype=np.float64)
    for i, item in enumerate(catalog):
        for g in item.genres:
            m[i, col[g]] = 1.0
    return m


def catalog_coverage(lists: np.ndarray, n_items: int) -> float:
    """Share of the catalog that appears in at least one user's list."""
    listed = np.unique(lists[lists != NO_ITEM])
    return float(listed.size / n_items)


def intra_list_diversity(lists: np.ndarray, genres: np.ndarray) -> float:
    """Mean over users of the average pairwise genre distance (1 − Jaccard) within the list."""
    values = []
    for row in lists:
        items = row[row != NO_ITEM]
        if items.size < 2:
            continue
        g = genres[items]
        inter = g @ g.T
        sizes = g.sum(axis=1)
        union = sizes[:, None] + sizes[None, :] - inter
        similarity = np.divide(inter, union, out=np.ones_like(inter), where=union > 0)  # no genres: alike
        upper = np.triu_indices(items.size, k=1)
        values.append(float((1.0 - similarity[upper]).mean()))
    return float(np.mean(values)) if values else 0.0


def head_items(popularity: np.ndarray, head_share: float) -> np.ndarray:
    """Boolean mask of the short head: the `head_share` most popular items (ties by index)."""
    n_head = int(np.ceil(head_share * popularity.size))
    order = np.lexsort((np.arange(popularity.size), -popularity))
    mask = np.zeros(popularity.size, dtype=bool)
    mask[order[:n_head]] = True
    return mask


def long_tail_share(lists: np.ndarray, head: np.ndarray) -> float:
    """Share of listed items outside the short head."""
    items = lists[lists != NO_ITEM]
    return float((~head[items]).mean()) if items.size else 0.0


def novelty(lists: np.ndarray, popularity: np.ndarray, n_users: int) -> float:
    """Mean self-information −log2 p(i) of listed items, p(i) = (users with i + 1) / (users + 1)."""
    items = lists[lists != NO_ITEM]
    if not items.size:
        return 0.0
    p = (popularity[items] + 1.0) / (n_users + 1.0)
    return float(-np.log2(p).mean())


def beyond_accuracy(lists: np.ndarray, catalog: Catalog, popularity: np.ndarray, n_users: int,
                    head_share: float) -> dict[str, float]:
    return {
        "coverage": catalog_coverage(lists, len(catalog)),
        "diversity": intra_list_diversity(lists, genre_matrix(catalog)),
        "long_tail_share": long_tail_share(lists, head_items(popularity, head_share)),
        "novelty": novelty(lists, popularity, n_users),
    }
