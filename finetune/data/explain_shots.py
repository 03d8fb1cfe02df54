"""The worked examples of prompts/explain_examples.toml, chosen per case for the sampling (teacher) prompt.

A case is shown two examples: one of another kind first, then one of its own kind (the kind of its first fact:
a connection's relation, shared genres, the request, or catalog statistics), so a small model copies the shape
of a sentence that fits, not a fact of the wrong kind. Examples are real train-split cases rendered by
agent/llm/pick_facts.py like any other.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import cache

import prompts
from agent.llm.pick_facts import PickContext, describe_fields, explain_fields
from retrieval.catalog.schema import Catalog
from retrieval.evidence import Evidence

TASK_PROMPTS = {"explain": "explain", "describe": "describe"}


@dataclass(frozen=True)
class Shot:
    kind: str
    fields: dict
    answer: str


def first_kind(evidence: Evidence) -> str:
    """What the first fact line of the evidence is about (agent/llm/pick_facts.py orders them)."""
    if evidence.connections:
        return evidence.connections[0].relation
    if evidence.shared_genres:
        return "liked"
    s = evidence.satisfies
    if s.genres or s.years or s.mood_genres or s.audience_genres or s.avoided_genres:
        return "request"
    return "stats"


@cache
def _table() -> dict:
    return prompts.load_table("explain_examples")


def shots(task: str, catalog: Catalog) -> list[Shot]:
    """Every example of `task` ("explain" | "describe"), rendered."""
    out = []
    for row in _table()[task]:
        evidence = Evidence.model_validate_json(row["evidence"])
        item = catalog[row["item_id"]]
        if task == "explain":
            fields = explain_fields(PickContext(item=item, evidence=evidence, request=row["request"],
                                                wishes=row["wishes"], liked=tuple(row["liked"]),
                                                asked_genres=tuple(row["asked_genres"])))
        else:
            fields = describe_fields(item, evidence)
        out.append(Shot(row["kind"], fields, row["answer"]))
    return out


VARIANTS = 3  # example pairs per kind: each pair is one constant prompt head, computed once for all its cases


def choose(examples: list[Shot], kind: str, key: str, variants: int = VARIANTS) -> list[tuple[dict, str]]:
    """Two examples for a case of `kind` (`key` picks one of `variants` pairs): another kind, then its own."""
    v = zlib.crc32(key.encode()) % variants
    same = [s for s in examples if s.kind == kind] or [s for s in examples if s.kind == "liked"] or examples
    other = [s for s in examples if s not in same] or examples
    last, first = same[v % len(same)], other[(v * 5 + len(kind)) % len(other)]
    return [(first.fields, first.answer), (last.fields, last.answer)]
