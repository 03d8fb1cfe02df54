"""`[eval.conversational]`: the request-conditioned benchmark of the whole chat turn (`marquee eval --conversational`,
finetune/evaluation/conversational/). A section of the strict Settings, so a typo is an error like anywhere else.

The systems are a list, so a new chat variant is one more row of the same run:
```toml
[eval.conversational]
stage = "validation"            # tune on validation, report on test

[[eval.conversational.systems]]
name = "chat-pool40"
kind = "agent"
settings = { agent = { pool = 40 }, candidates = { count = 40 } }
```
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from retrieval.config.sections import Section

# The request types, each written from the held-out target (finetune/evaluation/conversational/requests.py).
REQUEST_TYPES = ("vague", "genre", "genre-decade", "loved", "genre-zh")
ALL = "all"  # the pooled row over every request type
PICKS = 5  # NDCG@5 / HR@5: a reply shows five picks unless the user asks for another number
AGENT_SECTIONS = ("agent", "llm", "candidates")  # what may differ between chat variants of one run
STAGES = ("test", "validation")
# Today's chat ranking (before issue #12): EASE in a weighted RRF with semantic search over the request's words
# and genre names, item-kNN for liked titles without a known user. Kept as a same-run row of the benchmark.
RRF_CHAT = {"candidates": {"fusion": "rrf", "collaborative_model": "ease", "anchor_model": "itemknn"}}


class SystemSpec(Section):
    """One row of the benchmark: a `marquee eval` ranker (ignoring the request, or behind the ORACLE
    filter of the request's attributes) or the chat agent (with optional settings overrides)."""

    name: str
    kind: Literal["ranker", "agent"]
    ranker: str | None = Field(None, description="kind='ranker': a `marquee eval` ranker name (its tuned parameters)")
    oracle: bool = Field(False, description="kind='ranker': pick only among items that have the request's attributes")
    settings: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                                description="kind='agent': overrides of the agent / llm / candidates sections")

    @model_validator(mode="after")
    def _consistent(self) -> "SystemSpec":
        if not self.name.strip():
            raise ValueError("a system needs a name")
        if self.kind == "ranker":
            if not self.ranker:
                raise ValueError(f"system {self.name!r}: kind 'ranker' needs ranker = NAME (e.g. \"sasrec+ease\")")
            if self.settings:
                raise ValueError(f"system {self.name!r}: settings overrides are for kind 'agent'")
        else:
            if self.ranker or self.oracle:
                raise ValueError(f"system {self.name!r}: ranker / oracle are for kind 'ranker'")
            unknown = sorted(set(self.settings) - set(AGENT_SECTIONS))
            if unknown:
                raise ValueError(f"system {self.name!r}: only {', '.join(AGENT_SECTIONS)} may be overridden, "
                                 f"not {', '.join(unknown)}")
        return self


class Target(Section):
    """A goal for the chat: its NDCG@5 on `type` is at least `ratio` × `baseline`'s."""

    type: str
    baseline: str
    ratio: float = Field(gt=0)


def default_systems() -> list[SystemSpec]:
    rows = [SystemSpec(name=f"{r}{'+oracle' if oracle else ''}", kind="ranker", ranker=r, oracle=oracle)
            for r in ("mostpop", "sasrec+ease") for oracle in (False, True)]
    return rows + [SystemSpec(name="chat", kind="agent"), SystemSpec(name="chat-rrf", kind="agent", settings=RRF_CHAT)]


def default_targets() -> list[Target]:
    """Issue #12: at least the oracle baseline on the genre types, 1.3× today's chat overall, 1.2× on "I loved X"."""
    oracle = [Target(type=t, baseline="sasrec+ease+oracle", ratio=1.0) for t in ("genre", "genre-decade", "genre-zh")]
    return oracle + [Target(type=ALL, baseline="chat-rrf", ratio=1.3), Target(type="loved", baseline="chat-rrf", ratio=1.2)]


class ConversationalConfig(Section):
    users: int = Field(0, ge=0, description="0 = every test user; N = a seeded sample of N users")
    types: list[str] = Field(default_factory=lambda: list(REQUEST_TYPES))
    seed: int = Field(0, description="seed of the user sample, the requests and the bootstrap")
    model_seed: int = Field(0, description="seed of the rankers' models (SASRec's cache is keyed by it)")
    stage: Literal["test", "validation"] = Field(
        "test", description="as `marquee eval --stage`: 'test' = the target is each user's last item and every system "
        "sees train + the validation item; 'validation' = the target is the validation item, systems see train only "
        "(tune here, never on test)")
    min_rating: float = Field(4.0, description="'I loved X': X rated at least this (logs with ratings)")
    reference: str = Field("chat", description="system every other one is compared with (paired bootstrap)")
    bootstrap_samples: int = Field(1000, ge=10)
    systems: list[SystemSpec] = Field(default_factory=default_systems)
    targets: list[Target] = Field(default_factory=default_targets)

    @field_validator("types")
    @classmethod
    def _known_types(cls, types: list[str]) -> list[str]:
        names = list(dict.fromkeys(t.strip() for t in types if t.strip()))
        unknown = [t for t in names if t not in REQUEST_TYPES]
        if unknown or not names:
            raise ValueError(f"unknown request type(s) {unknown}; pick from {', '.join(REQUEST_TYPES)}")
        return names

    @model_validator(mode="after")
    def _consistent(self) -> "ConversationalConfig":
        names = [s.name for s in self.systems]
        if not names:
            raise ValueError("list at least one system")
        if len(set(names)) != len(names):
            raise ValueError(f"system names must be unique, got {names}")
        if self.reference not in names:
            raise ValueError(f"reference {self.reference!r} is not one of the systems {names}")
        for target in self.targets:
            if target.type not in (*REQUEST_TYPES, ALL):
                raise ValueError(f"target type {target.type!r} unknown; use one of {', '.join(REQUEST_TYPES)} or {ALL}")
        return self

    @property
    def agents(self) -> list[SystemSpec]:
        return [s for s in self.systems if s.kind == "agent"]
