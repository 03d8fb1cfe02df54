"""The fine-tuning settings of one run: `[finetune]` of the one marquee.toml (retrieval.config.FinetuneConfig),
with the `--quick` overlay and the command-line flags on top.

Precedence: defaults ← [finetune] of marquee.toml ← MARQUEE_FINETUNE__* ← the quick overlay ← flags.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from retrieval.config import ConfigError, Settings

# A tiny slice for CI: few users, few steps, EASE (fits in a second) as the retriever.
QUICK = dict(retriever="ease", max_users=16, targets_per_user=2, max_steps=4, batch_size=2, grad_accum=2,
             eval_every=2, eval_users=4, tune_users=6, checkpoint_every=2, patience=10, max_minutes=10.0,
             log_every=1, warmup_ratio=0.0, lora_layers=4, cache_frozen=True)  # CI covers the frozen-layer cache


def load_finetune_settings(config: str | Path | None = None, quick: bool = False, **flags: Any) -> Settings:
    """The settings of a `marquee finetune` run; its `.finetune` section holds the quick overlay and the flags
    (None = not given), validated as the file is. Raises ConfigError (a ValueError) or FileNotFoundError."""
    overlay = {**(QUICK if quick else {}), **{k: v for k, v in flags.items() if v is not None}}
    settings = Settings.load(config, source="command line", finetune=overlay)
    check_scorer(settings.finetune.scorer)
    return settings


def check_scorer(name: str) -> None:
    from agent.llm.scorers import UnknownScorerError, scorer_class  # the scorer registry owns the names

    try:
        scorer_class(name)
    except UnknownScorerError as exc:
        raise ConfigError(f"[finetune] scorer: {exc}") from None
