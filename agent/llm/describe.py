"""`marquee enrich`: one-sentence item descriptions that verbalise catalog facts and collaborative evidence.

A description says what the catalog and the interaction log hold about an item: its year and genres, the titles its
audience loved ("loved by 20 of the 29 viewers who loved Ridicule (1996)"), its rating and audience
(`retrieval.evidence.LogEvidence.audience` / `.stats`). It is written by the explainer's adapter (prompts/describe.txt)
and must pass the same claim checker as explanations (agent/llm/claims.py): no plot, person or award can reach the
catalog or, through `marquee index`, the search index. A rejected one is dropped and counted, never stored.
Descriptions are marked `generated` and appended batch by batch to `<home>/catalogs/<name>/descriptions.jsonl`
(`retrieval.catalog.descriptions.append_descriptions`), so an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import prompts
from agent.llm.explainer import NO_SENTENCE, Draft, SentenceWriter
from agent.llm.pick_facts import describe_fields
from retrieval.catalog.descriptions import DescriptionRecord, append_descriptions, read_descriptions
from retrieval.catalog.schema import Catalog, Item
from retrieval.evidence import Evidence, LogEvidence


@dataclass
class EnrichReport:
    path: Path
    written: int = 0
    rejected: int = 0
    skipped: int = 0  # already described (earlier run, or the catalog has its own description)
    seconds: float = 0.0
    rejections: dict[str, tuple[str, ...]] = field(default_factory=dict)  # item_id -> problems

    def as_dict(self) -> dict:
        return {"path": str(self.path), "written": self.written, "rejected": self.rejected,
                "skipped": self.skipped, "seconds": round(self.seconds, 1)}


def item_evidence_of(log: LogEvidence | None, catalog: Catalog, item: Item) -> Evidence:
    """What a description may say beyond the item's own facts: its audience's other loves, rating and popularity."""
    if log is None:
        return Evidence(item_id=item.item_id)
    index = catalog.index_of(item.item_id)
    return Evidence(item_id=item.item_id, connections=log.audience(index), catalog=log.stats(index))


class DescriptionWriter(SentenceWriter):
    default_max_new_tokens = 64
    default_max_chars = 320

    def __init__(self, backend, catalog: Catalog, log: LogEvidence | None = None, **options):
        super().__init__(backend, catalog, **options)
        self.log = log

    @classmethod
    def from_config(cls, llm_cfg, home, catalog: Catalog, log: LogEvidence | None) -> "DescriptionWriter":
        return cls(cls.backend_from_config(llm_cfg, home), catalog, log, max_new_tokens=llm_cfg.explain_max_new_tokens,
                   constrained=llm_cfg.explain_constrained)

    def describe(self, items: list[Item]) -> list[tuple[Item, str | None, tuple[str, ...]]]:
        """(item, description or None, problems) per item, in order; one batched generation."""
        evidence = [item_evidence_of(self.log, self.catalog, it) for it in items]
        fields = [describe_fields(it, ev) for it, ev in zip(items, evidence)]
        drafts = {d.index: d for d in self.write("describe", fields,
                                                 constraints=self.constraints(list(zip(items, evidence))))}
        out = []
        for n, (item, ev) in enumerate(zip(items, evidence)):
            draft = drafts.get(n, Draft(n, None))
            text = draft.text
            problems = (NO_SENTENCE,) if text is None else (
                self.checker.check_claims(text, item, ev).problems + draft.fluency_problems())
            out.append((item, None if problems else text, problems))
        return out

    def pending(self, path: Path, limit: int | None = None) -> tuple[list[Item], int]:
        """Items still without a description (resume point), and how many were skipped."""
        done = read_descriptions(path)
        todo, skipped = [], 0
        for item in self.catalog:
            if item.item_id in done or (item.description and not item.description_generated):
                skipped += 1
            else:
                todo.append(item)
        return (todo if limit is None else todo[:limit]), skipped

    def enrich(self, path: Path, limit: int | None = None, batch_size: int = 8,
               progress: bool = True) -> EnrichReport:
        from tqdm import tqdm

        start = time.perf_counter()
        todo, skipped = self.pending(path, limit)
        report = EnrichReport(path=Path(path), skipped=skipped)
        version = prompts.load("describe").version
        with tqdm(total=len(todo), desc="describing items", unit="item", disable=not progress) as bar:
            for i in range(0, len(todo), batch_size):
                rows = []
                for item, text, problems in self.describe(todo[i:i + batch_size]):
                    if text is None:
                        report.rejected += 1
                        report.rejections[item.item_id] = problems
                    else:
                        rows.append(DescriptionRecord(item.item_id, text, generated=True,
                                                      model=self.backend.model_id, prompt_version=version))
                report.written += append_descriptions(path, rows)  # per batch: a crash loses one batch at most
                bar.update(min(batch_size, len(todo) - i))
                bar.set_postfix(written=report.written, rejected=report.rejected)
        report.seconds = time.perf_counter() - start
        return report
