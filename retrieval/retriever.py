"""LangChain face of the item store: a `BaseRetriever` returning catalog items as `Document`s.

`ItemRetriever(store=store, k=5, constraints=Constraints(...))` — or per call:
`retriever.invoke("space opera", k=3, constraints=...)`. Hard constraints are Chroma filters (see
`ItemStore.search_hits`), so every returned document satisfies them.
"""
from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict


class ItemRetriever(BaseRetriever):
    store: Any  # retrieval.store.ItemStore (Any: pydantic cannot validate the Chroma client inside)
    k: int = 4
    constraints: Any = None  # retrieval.candidates.base.Constraints | None

    model_config = ConfigDict(arbitrary_types_allowed=True)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                **kwargs: Any) -> list[Document]:
        k = int(kwargs.get("k", self.k))
        constraints = kwargs.get("constraints", self.constraints)
        return [Document(page_content=hit.document, id=hit.item_id,
                         metadata={"item_id": hit.item_id, "title": hit.item.title, "year": hit.item.year,
                                   "genres": list(hit.item.genres), "popularity": hit.item.popularity,
                                   "score": hit.score})
                for hit in self.store.search_hits(query, k, constraints)]
