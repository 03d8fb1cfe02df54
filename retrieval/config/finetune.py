"""Fine-tuning settings: the `[finetune]` section of marquee.toml (finetune.training reads it; `--quick` is an
overlay applied there, finetune/training/config.py).

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

from typing import Any

from pydantic import Field, model_validator

from retrieval.config.sections import Section

# "labels": cross-entropy of the softmax over the candidates (CE only) | "token": full-vocabulary CE on the label
# token (listwise) | "distill": KL(softmax(teacher / T) ‖ softmax(student)) over the candidates + ce_weight × CE
LOSSES = ("labels", "token", "distill")
FUSIONS = ("residual", "minmax")  # agent.llm.fusion
SCHEDULES = ("cosine", "linear", "constant")


class ExplainTrainConfig(Section):
    """`[finetune.explain]`: the explainer's self-training (`marquee finetune --task explain`,
    finetune/training/tasks/explain.py)."""

    # --- cases (finetune/data/explain_cases.py): replies of the chat on the train split, users split once ---
    train_replies: int = 1000
    heldout_users: int = 150  # never in training: `marquee bench explain` draws its held-out triples from them
    train_items: int = 400  # items to describe in training ...
    heldout_items: int = 150  # ... and items held out for `marquee bench explain`
    # --- rejection sampling: one entry per round (round 1 from the base model, later ones from the adapter) ---
    cases_per_round: list[int] = Field(default_factory=lambda: [900, 700])
    items_per_round: list[int] = Field(default_factory=lambda: [200, 200])
    samples: int = 4
    temperature: list[float] = Field(default_factory=lambda: [0.6, 0.7])
    top_p: float = 0.95
    max_new_tokens: int = 64
    batch_cases: int = 8
    keep_per_case: int = 2
    constrained: bool = True  # claim-constrained decoding while sampling (agent/llm/constrained.py)
    # expert iteration: an explainer adapter to continue from ("explain" = the shipped one, or a folder / run name,
    # agent.llm.loading.resolve_adapter); round 1 then samples from it with the serving prompt, not from the base
    # model with worked examples
    start_from: str = ""
    # > 0: each case also gets the draft served decoding writes (greedy, claim-constrained, stepping back from dead
    # ends up to this many times, agent/llm/lookahead.py), so the adapter learns to write what that search finds
    steps_back: int = 0
    validation_cases: int = 120  # train-split cases never sampled for training: loss and claim-check pass rate
    # --- LoRA ---
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_layers: int = 8
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                               "up_proj", "down_proj"])
    epochs: float = 3.0  # per round, over that round's training set
    learning_rate: float = 1e-3
    batch_size: int = 8
    eval_every: int = 25

    @model_validator(mode="after")
    def _consistent(self) -> "ExplainTrainConfig":
        problems = []
        rounds = len(self.cases_per_round)
        if rounds < 1 or len(self.items_per_round) != rounds or len(self.temperature) != rounds:
            problems.append("cases_per_round, items_per_round and temperature need one entry per round")
        if self.steps_back < 0:
            problems.append("steps_back must be ≥ 0")
        if self.samples < 1 or self.keep_per_case < 1 or self.batch_cases < 1 or self.batch_size < 1:
            problems.append("samples, keep_per_case, batch_cases and batch_size must be ≥ 1")
        if any(t < 0 for t in self.temperature) or not 0 < self.top_p <= 1:
            problems.append("temperature must be ≥ 0 and top_p in (0, 1]")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def rounds(self) -> int:
        return len(self.cases_per_round)


class FinetuneConfig(Section):
    # "rerank" (the reranker's adapter) | "explain" (the explainer's self-training, [finetune.explain])
    task: str = "rerank"
    explain: ExplainTrainConfig = ExplainTrainConfig()
    # --- data (finetune.data.instructions) ---
    retriever: str = "sasrec"
    retriever_params: dict[str, Any] = Field(default_factory=dict)
    candidates: int = 20
    targets_per_user: int = 5
    min_history: int = 3
    history_items: int = 10
    max_users: int = 0  # 0 = every user; N = a seeded sample (quick runs)
    # who proposes (and, for loss = "distill", teaches) the candidates of a training prefix without having seen
    # its target: 0 = `retriever` fitted on train minus each user's last targets_per_user positions (nested
    # leave-one-out); k ≥ 2 = cross-fitting: users in k folds, each fold's prefixes scored by a `retriever`
    # fitted on the other folds' users only (needed when every train position is a target)
    teacher_folds: int = 0
    # "segments" (Yes/No per candidate) | "listwise"; a plain name checked by agent.llm's scorer registry when
    # the run starts (finetune/training/config.py), as [llm] scorer is
    scorer: str = "segments"
    # --- LoRA (peft) ---
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                               "up_proj", "down_proj"])
    # 0 = every layer; N = only the top N layers: backward then stops there (≈2× faster steps on a CPU)
    lora_layers: int = 8
    # segment scorer + lora_layers: compute the frozen layers' output once, train only the top (frozen_cache.py)
    cache_frozen: bool = False  # pays off from the second epoch on (the cache costs about one forward pass)
    qlora: bool = False  # 4-bit base weights (bitsandbytes + CUDA only)
    # --- optimisation ---
    loss: str = "labels"
    # optimizer steps at the start during which the LLM (LoRA) stays frozen and only the scorer's own modules
    # train (the head scorer's head, over embeddings computed once): a cheap warm start before the LoRA moves
    freeze_llm_steps: int = 0
    distill_temperature: float = 0.0  # T of softmax(teacher / T); 0 = chosen on validation (teacher calibration)
    ce_weight: float = 0.2  # λ of the CE term next to the distillation KL (loss = "distill")
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
    fusion_grid: list[float] = Field(default_factory=lambda: [0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0])
    # how the trained adapter fuses (agent.llm.fusion): "residual" z(retriever) + g × z(LLM) | "minmax" (legacy)
    fusion: str = "residual"
    gate_coverages: list[float] = Field(default_factory=lambda: [0.25, 0.5, 0.75])  # margin-gate shares tried
    gate_k: int = 10  # the gate's margin: z-score of the retriever's best minus its k-th candidate
    patience: int = 3  # validations without improvement before early stopping
    checkpoint_every: int = 30
    keep_checkpoints: int = 2
    max_minutes: float = 40.0  # data + training loop; the final validation and w tuning come after (minutes)
    plan_schedule: bool = True  # shrink the LR schedule's horizon to the steps that fit in max_minutes
    threads: int = 0  # torch threads; 0 = adaptive: all cores, but 1 while the CPU is oversubscribed
    log_every: int = 5

    @model_validator(mode="after")
    def _consistent(self) -> "FinetuneConfig":
        """Every problem at once, so one edit of the file fixes them all."""
        problems = []
        if self.loss not in LOSSES:
            problems.append(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.fusion not in FUSIONS:
            problems.append(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.distill_temperature < 0 or self.ce_weight < 0:
            problems.append("distill_temperature (0 = chosen on validation) and ce_weight must be ≥ 0")
        if self.teacher_folds == 1 or self.teacher_folds < 0:
            problems.append(f"teacher_folds must be 0 (nested leave-one-out) or ≥ 2, got {self.teacher_folds}")
        if any(not 0 < c < 1 for c in self.gate_coverages) or self.gate_k < 2:
            problems.append("gate_coverages must lie in (0, 1) and gate_k must be ≥ 2")
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
            raise ValueError("; ".join(problems))
        return self
