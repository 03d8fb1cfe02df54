"""The evaluation protocol as configuration: the `[eval]` section of marquee.toml (docs/ARCHITECTURE.md §6).

```toml
[eval]
users = 0                       # 0 = every user; N = a seeded sample of N users (quick runs)
rankers = ["random", "mostpop", "itemknn", "ease", "sasrec"]
[eval.params.ease]
l2 = 300.0                      # overrides EASE's tuned default (retrieval/models/ease.py)
[eval.params.llm-lora]
retriever = "sasrec"            # rerankers reorder the top `rerank_depth` of this ranker
[eval.params."llm-lora@alone"]  # a variant (ablation row): llm-lora's params, then these
fusion_weight = 1000.0
```
A ranker runs with its model's own (validation-tuned) constructor defaults; `[eval.params.NAME]` overrides them.
"""
from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from retrieval.config.conversational import ConversationalConfig
from retrieval.config.sections import Section

DEFAULT_RANKERS = ["random", "mostpop", "itemknn", "ease", "ease-recency", "sasrec", "sasrec+ease", "semantic",
                   "next-id-canary", "hybrid", "llm-zeroshot", "llm-lora"]


COMPARISON_K = 10  # rankers are compared (bootstrap, best baseline, checks) on NDCG@10


class ProtocolChecks(Section):
    """Figures the same code must reproduce on full ML-100k, or something in the pipeline is wrong."""

    mostpop_recall_at_10: float = 0.0859
    mostpop_ndcg_at_10: float = 0.0449
    tolerance: float = 0.003


class EvalConfig(Section):
    ks: list[int] = Field(default_factory=lambda: [5, 10, 20], description="cut-offs of the full-ranking metrics")
    metrics: list[str] = Field(default_factory=lambda: ["recall", "ndcg", "mrr", "precision", "f1"])
    sampled_negatives: int = Field(19, description="negatives per user in the sampled (1 + N) view")
    sampled_ks: list[int] = Field(default_factory=lambda: [1, 5, 10])
    seed: int = 0
    users: int = Field(0, description="0 = all users; N = a seeded random sample of N users")
    stage: str = Field("test", description="'test' (published numbers) or 'validation' (tuning)")
    rankers: list[str] = Field(default_factory=lambda: list(DEFAULT_RANKERS))
    # Free-form on purpose: each ranker takes its own parameters. Ranker names are checked against the eval
    # registry (finetune.evaluation.rankers) where the run starts; parameter names by the ranker when it is built.
    params: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per-ranker parameter overrides "
                                              "(NAME or a variant NAME@LABEL → {parameter: value})")
    rerank_depth: int = Field(20, description="how many retriever candidates a reranker reorders")
    beyond_k: int = Field(10, description="list length for coverage / diversity / long-tail / novelty")
    long_tail_head: float = Field(0.2, description="share of most popular items that form the short head")
    bootstrap_samples: int = 1000
    batch_users: int = Field(256, description="users scored per call (memory vs speed)")
    checks: ProtocolChecks = ProtocolChecks()
    conversational: ConversationalConfig = Field(default_factory=ConversationalConfig,
                                                 description="`marquee eval --conversational` (retrieval/config/conversational.py)")

    @field_validator("ks", "sampled_ks")
    @classmethod
    def _positive_sorted(cls, ks: list[int]) -> list[int]:
        if not ks or any(k < 1 for k in ks):
            raise ValueError(f"cut-offs must be a non-empty list of positive integers, got {ks}")
        return sorted(set(ks))

    @field_validator("rankers")
    @classmethod
    def _rankers_given(cls, rankers: list[str]) -> list[str]:
        names = [r.strip() for r in rankers if r.strip()]
        if not names:
            raise ValueError("name at least one ranker, e.g. rankers = [\"mostpop\", \"ease\"]")
        return list(dict.fromkeys(names))  # de-duplicated, order kept

    @field_validator("stage")
    @classmethod
    def _known_stage(cls, stage: str) -> str:
        if stage not in ("test", "validation"):
            raise ValueError(f"stage must be 'test' or 'validation', got {stage!r}")
        return stage

    @field_validator("users")
    @classmethod
    def _users(cls, users: int) -> int:
        if users < 0:
            raise ValueError(f"users must be >= 0 (0 = all), got {users}")
        return users

    @field_validator("sampled_negatives", "rerank_depth", "beyond_k", "batch_users")
    @classmethod
    def _at_least_one(cls, value: int, info) -> int:
        if value < 1:
            raise ValueError(f"{info.field_name} must be >= 1")
        return value

    @field_validator("long_tail_head")
    @classmethod
    def _share(cls, share: float) -> float:
        if not 0.0 < share < 1.0:
            raise ValueError("long_tail_head must be in (0, 1)")
        return share

    @model_validator(mode="after")
    def _consistent(self) -> "EvalConfig":
        if max(self.sampled_ks) > self.sampled_negatives + 1:
            raise ValueError(f"sampled_ks {self.sampled_ks} exceed the {self.sampled_negatives + 1} sampled candidates")
        return self

    @property
    def depth(self) -> int:
        """How deep every ranked list is built (NDCG@10 is always computed: it is the comparison metric)."""
        return max(max(self.ks), self.beyond_k, self.rerank_depth, COMPARISON_K)

    def params_for(self, ranker: str) -> dict[str, Any]:
        """[eval.params.NAME], and for a variant NAME@LABEL its own table merged over NAME's."""
        base = ranker.split("@", 1)[0]
        return {**self.params.get(base, {}), **(self.params.get(ranker, {}) if ranker != base else {})}
