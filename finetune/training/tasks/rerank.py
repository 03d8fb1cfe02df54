"""`marquee finetune --task rerank` (the default): the reranker's LoRA adapter (finetune/training/trainer.py)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from finetune.training.tasks import Task


class RerankTask(Task):
    name = "rerank"
    description = "the reranker's adapter: distillation from the retriever's candidates, validation NDCG@10"
    slot = "default"

    def default_out(self, home: Path, quick: bool) -> Path:
        return Path(home) / "adapters" / ("quick" if quick else "finetune")

    def check(self, settings) -> None:
        from finetune.evaluation.rankers import entry

        cfg = settings.finetune
        if entry(cfg.retriever).reranks:
            raise ValueError(f"retriever {cfg.retriever!r} is itself a reranker; use e.g. sasrec or ease")

    def run(self, settings, dataset, home: Path, out: Path, resume: bool = False, command: str = "",
            log: Callable[[str], None] = print, progress: bool = True, data_only: bool = False) -> list[str]:
        from finetune.training.trainer import train

        result = train(settings.finetune, settings, dataset, home, out, resume=resume, command=command, log=log,
                       progress=progress, data_only=data_only)
        if result is None:  # --data-only
            return [f"data only: retrievers and teachers fitted (cached under {home}), examples built"]
        final = result.final
        return [f"adapter: {out}", f"steps: {result.state.step} ({result.stopped}), {result.seconds / 60:.1f} min",
                f"validation NDCG@10 ({result.stats['tune_users']} users): retriever {final.retriever:.4f}, "
                f"LLM alone {final.llm_only:.4f}, fused {final.best:.4f} at w={final.best_weight:g}"]
