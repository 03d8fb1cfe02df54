"""The three forms of the hard constraints agree on every item of the real MovieLens-100k catalog: the per-item
check (`Constraints.allows`), the vectorised mask (`FactsTable.mask`) and the Chroma `where` translation, run by
a real Chroma collection over the metadata the index stores."""
from __future__ import annotations

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings as ChromaSettings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrieval.candidates.filtering import CatalogArrays
from retrieval.constraints import Constraints, FactsTable, constraints_to_where
from retrieval.indexing import facts_of, item_metadata

GENRES = ['Action', 'Adventure', 'Animation', "Children's", 'Comedy', 'Crime', 'Documentary', 'Drama', 'Fantasy',
          'Film-Noir', 'Horror', 'Musical', 'Mystery', 'Romance', 'Sci-Fi', 'Thriller', 'War', 'Western', "Nope"]


@st.composite
def constraints(draw):
    year = st.one_of(st.none(), st.integers(1920, 2000))
    return Constraints(include_genres=frozenset(draw(st.sets(st.sampled_from(GENRES), max_size=3))),
                       exclude_genres=frozenset(draw(st.sets(st.sampled_from(GENRES), max_size=3))),
                       genre_mode=draw(st.sampled_from(["any", "all"])), year_min=draw(year), year_max=draw(year),
                       exclude_ids=frozenset(str(i) for i in draw(st.sets(st.integers(1, 1700), max_size=30))))


@pytest.fixture(scope="module")
def catalog(ml100k):
    # the real catalog has items without a year ("unknown", id 267) and without genres: both must agree too
    assert any(it.year is None for it in ml100k.catalog) and any(not it.genres for it in ml100k.catalog)
    return ml100k.catalog


@pytest.fixture(scope="module")
def collection(tmp_path_factory, catalog):
    """Every catalog item with exactly the metadata `marquee index` stores (vectors are irrelevant here)."""
    client = chromadb.PersistentClient(path=str(tmp_path_factory.mktemp("chroma")),
                                       settings=ChromaSettings(anonymized_telemetry=False))
    col = client.create_collection("constraints", embedding_function=None)
    vectors = np.random.default_rng(0).normal(size=(len(catalog), 4)).tolist()
    col.add(ids=catalog.item_ids, embeddings=vectors, metadatas=[item_metadata(it) for it in catalog])
    return col


@pytest.fixture(scope="module")
def facts(catalog) -> FactsTable:
    return FactsTable.from_catalog(catalog)


def chroma_allowed(collection, c: Constraints) -> set[str]:
    where = constraints_to_where(c)
    return set(collection.get(where=where, include=[])["ids"]) if where is not None else set(collection.get()["ids"])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(c=constraints())
def test_item_check_mask_and_chroma_where_agree_on_every_item(catalog, facts, collection, c):
    by_item = {it.item_id for it in catalog if c.allows(it)}
    assert set(facts.ids[facts.mask(c)]) == by_item
    assert chroma_allowed(collection, c) == by_item


def test_the_facts_of_stored_metadata_mask_like_the_catalog(catalog, facts, collection):
    stored = collection.get(include=["metadatas"])
    from_index = facts_of(dict(zip(stored["ids"], stored["metadatas"])))
    c = Constraints(include_genres=frozenset({"Drama", "War"}), year_max=1980, exclude_ids=frozenset({"1", "nope"}))
    assert set(from_index.ids[from_index.mask(c)]) == set(facts.ids[facts.mask(c)]) != set()


def test_catalog_arrays_rows_are_catalog_indices(catalog):
    arrays = CatalogArrays(catalog)
    c = Constraints(include_genres=frozenset({"Film-Noir"}), year_min=1950)
    assert [catalog.at(int(i)).item_id for i in np.flatnonzero(arrays.facts.mask(c))] == \
        [it.item_id for it in catalog if c.allows(it)]


@pytest.mark.parametrize("c, allowed", [
    (Constraints(include_genres=frozenset({"Nope"})), lambda items: []),  # a genre the catalog lacks never fits
    (Constraints(include_genres=frozenset({"Drama", "Nope"}), genre_mode="all"), lambda items: []),
    (Constraints(exclude_genres=frozenset({"Nope"})), lambda items: items),  # … and excluding it removes nothing
    (Constraints(year_min=1000), lambda items: [it for it in items if it.year is not None]),  # unknown year fails
    (Constraints(exclude_genres=frozenset({"Drama"})), lambda items: [it for it in items if "Drama" not in it.genres]),
])
def test_edge_rules(catalog, facts, collection, c, allowed):
    expected = {it.item_id for it in allowed(list(catalog))}
    assert set(facts.ids[facts.mask(c)]) == chroma_allowed(collection, c) == expected


def test_where_translation():
    assert constraints_to_where(None) is None and constraints_to_where(Constraints()) is None
    where = constraints_to_where(Constraints(include_genres=frozenset({"Drama", "War"}),
                                             exclude_genres=frozenset({"Horror"}), year_min=1980, year_max=1989,
                                             exclude_ids=frozenset({"7", "3"})))
    assert where == {"$and": [{"$or": [{"genre:Drama": True}, {"genre:War": True}]},
                              {"genre:Horror": {"$ne": True}}, {"year": {"$gte": 1980}},
                              {"year": {"$lte": 1989}}, {"item_id": {"$nin": ["3", "7"]}}]}
    assert constraints_to_where(Constraints(include_genres=frozenset({"Drama"}))) == {"genre:Drama": True}
