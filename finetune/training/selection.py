"""Which sampled sentences become training data (rejection sampling): only those the claim checker passes, that cite
evidence personal to the user or the request whenever the pick has some, that are not near-duplicates of the
template explanation or of each other, and whose sentence shape is not already over-represented.

The shape ("skeleton") of a sentence is its words with titles, numbers and genre words replaced by placeholders;
capping each shape keeps a small model from learning one frame for every pick (which would also make the five
explanations of a reply share phrases).
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from agent.llm.claims import ClaimChecker
from agent.llm.evidence_text import ExplanationWriter
from agent.llm.explainer import Draft
from finetune.data.explain_cases import DescribeCase, ExplainCase, replies
from retrieval.catalog.schema import Catalog
from retrieval.evidence import Evidence


@dataclass(frozen=True)
class SelectionRules:
    keep_per_case: int = 2
    duplicate_similarity: float = 88.0  # rapidfuzz ratio (0-100) above which two samples of a case are one
    template_similarity: float = 80.0  # ... above which a sample is the template explanation reworded
    skeleton_share: float = 0.04  # at most this share of the kept set (and at least `skeleton_min`) per shape
    skeleton_min: int = 4


@dataclass(frozen=True)
class Kept:
    case_id: str
    task: str
    text: str
    round: int


@dataclass
class SelectionReport:
    samples: int = 0
    passed: int = 0  # claim check passed
    kept: int = 0
    cases_with_kept: int = 0
    cases: int = 0
    dropped: Counter = field(default_factory=Counter)  # reason -> samples
    problems: Counter = field(default_factory=Counter)  # first word of each claim-check problem -> samples

    def as_dict(self) -> dict:
        return {"samples": self.samples, "passed_claim_check": self.passed,
                "pass_rate": round(self.passed / self.samples, 4) if self.samples else 0.0, "kept": self.kept,
                "cases": self.cases, "cases_with_kept": self.cases_with_kept, "dropped": dict(self.dropped),
                "problems": dict(self.problems.most_common(12))}


def template_texts(cases: Sequence[ExplainCase], catalog: Catalog) -> dict[str, str]:
    """case_id -> the template explanation the reply would show for that pick (frames rotate over a reply)."""
    out = {}
    for members in replies(cases).values():
        picks = [(catalog[c.item_id], Evidence.model_validate(c.evidence)) for c in members]
        for case, text in zip(members, ExplanationWriter().write(picks)):
            out[case.case_id] = text
    return out


def skeleton(text: str, case_titles: Sequence[str], checker: ClaimChecker) -> str:
    low = text.lower()
    for title in sorted(case_titles, key=len, reverse=True):
        low = low.replace(title.lower(), "T").replace(re.sub(r"\s*\(\d{4}\)$", "", title).lower(), "T")
    low = re.sub(r"\d[\d,.]*%?", "N", low)
    low = checker._genre_re.sub("G", low)
    return " ".join(re.findall(r"[a-z]+|[TNG]", low))


def select(samples: Sequence[dict], cases: Mapping[str, ExplainCase | DescribeCase], catalog: Catalog,
           checker: ClaimChecker, rules: SelectionRules = SelectionRules(),
           templates: Mapping[str, str] | None = None) -> tuple[list[Kept], SelectionReport]:
    from rapidfuzz import fuzz

    report = SelectionReport(samples=len(samples), cases=len({s["case_id"] for s in samples}))
    templates = templates or {}
    passing: dict[str, list[dict]] = {}
    for s in samples:
        case = cases.get(s["case_id"])
        if case is None:
            report.dropped["unknown case"] += 1
            continue
        text = s.get("text")
        if not text:
            report.dropped["no sentence"] += 1
            continue
        evidence = Evidence.model_validate(case.evidence)
        asked = getattr(case, "asked_genres", ())
        verdict = checker.check_claims(text, catalog[case.item_id], evidence, asked)
        if not verdict.ok:
            report.dropped["claim check"] += 1
            report.problems.update({p.split(" ")[0] for p in verdict.problems})
            continue
        if Draft(0, text, s.get("worst_logprob", 0.0)).fluency_problems():
            report.dropped["garbled (below the fluency floor)"] += 1
            continue
        report.passed += 1
        if isinstance(case, ExplainCase) and evidence.personal() and not verdict.personal:
            report.dropped["no personal evidence cited"] += 1
            continue
        template = templates.get(case.case_id)
        if template and fuzz.ratio(text.lower(), template.lower()) >= rules.template_similarity:
            report.dropped["near the template"] += 1
            continue
        passing.setdefault(case.case_id, []).append(s)
    # within a case: distinct sentences only, at most keep_per_case
    chosen: list[tuple[dict, str]] = []
    for case_id, group in passing.items():
        mine: list[str] = []
        for s in group:
            if any(fuzz.ratio(s["text"].lower(), t.lower()) >= rules.duplicate_similarity for t in mine):
                report.dropped["duplicate within the case"] += 1
                continue
            if len(mine) >= rules.keep_per_case:
                report.dropped["case already has enough"] += 1
                continue
            mine.append(s["text"])
            case = cases[case_id]
            titles = [catalog[case.item_id].label] + [t for _, t in Evidence.model_validate(case.evidence).titles()]
            chosen.append((s, skeleton(s["text"], titles, checker)))
    # across the set: cap each sentence shape; the first sample of each case goes first
    limit = max(rules.skeleton_min, int(rules.skeleton_share * len(chosen)))
    shapes: Counter = Counter()
    kept: list[Kept] = []
    for s, shape in sorted(chosen, key=lambda pair: pair[0]["sample"]):
        if shapes[shape] >= limit:
            report.dropped["shape over-represented"] += 1
            continue
        shapes[shape] += 1
        kept.append(Kept(s["case_id"], s["task"], s["text"], s["round"]))
    report.kept = len(kept)
    report.cases_with_kept = len({k.case_id for k in kept})
    return kept, report
