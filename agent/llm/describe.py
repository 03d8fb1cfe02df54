"""`marquee enrich`: one or two sentence LLM descriptions for catalog items that only list facts.

Descriptions are written from the item's title, year and genres, pass the same grounding check as explanations
(a rejected one is dropped and counted, never stored), are marked `generated`, and are appended batch by batch
to `<home>/catalogs/<name>/descriptions.jsonl` through STORE's `append_descriptions`, so an interrupted run
resumes where it stopped and `marquee index` embeds them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import prompts
from agent.llm.explainer import NO_SENTENCE, GroundedWriter, item_facts
from retrieval.catalog.descriptions import DescriptionRecord, append_descriptions, read_descriptions
from retrieval.catalog.schema import Item


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


class DescriptionWriter(GroundedWriter):
    default_max_new_tokens = 64
    default_max_chars = 320

    def describe(self, items: list[Item]) -> list[tuple[Item, str | None, tuple[str, ...]]]:
        """(item, description or None, problems) per item; one batched generation."""
        out = []
        for item, text in zip(items, self.write("describe", [item_facts(it) for it in items], max_sentences=2)):
            problems = (NO_SENTENCE,) if text is None else self.checker.check(text, item).problems
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
