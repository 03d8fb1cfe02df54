"""Fine-tuning settings: the `[finetune]` section of marquee.toml, one dataclass, `--quick` as an overlay.

```toml
[finetune]
retriever = "sasrec"        # base retriever (an `marquee eval` ranker name): hard negatives + fusion partner
targets_per_user = 5        # last N train positions of each user become examples (earlier items = history)
lora_rank = 16
learning_rate = 5e-4
max_minutes = 40
```
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune.toml_section import read_toml_section

LOSSES = ("labels", "token")  # softmax over the candidates' label tokens | full-vocabulary CE on the label token
SCHEDULES = ("cosine", "linear", "constant")


@dataclass
class TrainConfig:
    # --- data (finetune.data.instructions) ---
    retriever: str = "sasrec"
    retriever_params: dict[str, Any] = field(default_factory=dict)
    candidates: int = 20
    targets_per_user: int = 5
    min_history: int = 3
    history_items: int = 10
    max_users: int = 0  # 0 = every user; N = a seeded sample (quick runs)
    scorer: str = "segments"  # a registered LLM scorer (agent.llm.scorers): "segments" (Yes/No per candidate), …
    # --- LoRA (peft) ---
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                               "up_proj", "down_proj"])
    # 0 = every layer; N = only the top N layers: backward then stops there (≈2× faster steps on a CPU)
    lora_layers: int = 8
    # segment scorer + lora_layers: compute the frozen layers' output once, train only the top (frozen_cache.py)
    cache_frozen: bool = False  # pays off from the second epoch on (the cache costs about one forward pass)
    qlora: bool = False  # 4-bit base weights (bitsandbytes + CUDA only)
    # --- optimisation ---
    loss: str = "labels"
    learning_rate: float = 5e-4
    weight_decay: float = 0.0
    schedule: str = "cosine"
    warmup_ratio: float = 0.05
    epochs: float = 1.0
    max_steps: int = 0  # optimizer steps; 0 = from epochs
    batch_size: int = 8  # examples per forward (per device)
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    seed: int = 0
    # --- validation, checkpoints, budget ---
    eval_every: int = 30  # optimizer steps between validations
    eval_users: int = 300  # fixed seeded subset of validation users for periodic validation
    tune_users: int = 500  # validation users for the final fusion-weight grid
    fusion_grid: list[float] = field(default_factory=lambda: [0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0])
    patience: int = 3  # validations without improvement before early stopping
    checkpoint_every: int = 30
    keep_checkpoints: int = 2
    max_minutes: float = 40.0  # data + training loop; the final validation and w tuning come after (minutes)
    plan_schedule: bool = True  # shrink the LR schedule's horizon to the steps that fit in max_minutes
    threads: int = 0  # torch threads; 0 = adaptive: all cores, but 1 while the CPU is oversubscribed
    log_every: int = 5

    def __post_init__(self) -> None:
        problems = []
        if self.loss not in LOSSES:
            problems.append(f"loss must be one of {LOSSES}, got {self.loss!r}")
        from agent.llm.scorers import UnknownScorerError, scorer_class

        try:
            scorer_class(self.scorer)
        except UnknownScorerError as exc:
            problems.append(str(exc))
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 2 <= self.candidates <= 26:
            problems.append(f"candidates must be 2..26 (one label token each), got {self.candidates}")
        for name in ("targets_per_user", "lora_rank", "lora_alpha", "batch_size", "grad_accum", "eval_every",
                     "eval_users", "tune_users", "checkpoint_every", "keep_checkpoints", "patience", "min_history"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.lora_layers < 0:
            problems.append(f"lora_layers must be ≥ 0 (0 = all layers), got {self.lora_layers}")
        if not 0 <= self.lora_dropout < 1 or not 0 <= self.warmup_ratio < 1:
            problems.append("lora_dropout and warmup_ratio must be in [0, 1)")
        if self.learning_rate <= 0 or self.max_minutes <= 0 or (self.epochs <= 0 and self.max_steps <= 0):
            problems.append("learning_rate, max_minutes and epochs (or max_steps) must be positive")
        if not self.fusion_grid or any(w < 0 for w in self.fusion_grid) or 0.0 not in self.fusion_grid:
            problems.append("fusion_grid needs non-negative weights and must contain 0 (= the retriever alone)")
        if not self.target_modules:
            problems.append("target_modules must name at least one module, e.g. [\"q_proj\", \"v_proj\"]")
        if problems:
            raise ValueError("invalid [finetune] config: " + "; ".join(problems))

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# A tiny slice for CI: few users, few steps, EASE (fits in a second) as the retriever.
QUICK = dict(retriever="ease", max_users=16, targets_per_user=2, max_steps=4, batch_size=2, grad_accum=2,
             eval_every=2, eval_users=4, tune_users=6, checkpoint_every=2, patience=10, max_minutes=10.0,
             log_every=1, warmup_ratio=0.0, lora_layers=4, cache_frozen=True)  # CI covers the frozen-layer cache


def load_train_config(path: Path | None = None, quick: bool = False, **overrides: Any) -> TrainConfig:
    """Defaults ← `[finetune]` of `path` ← the quick overlay ← explicit overrides (None = not given)."""
    values = read_toml_section(path, "finetune")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown [finetune] key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if quick:
        values.update(QUICK)
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return TrainConfig(**values)
    except TypeError as exc:
        raise ValueError(f"invalid [finetune] config: {exc}") from None
