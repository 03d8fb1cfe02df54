"""LLM scorers: how the reranker turns ONE forward pass into a score per candidate, registered by name (in the
style of peft's tuners: one module per method, each registered once).

A scorer module owns everything that depends on the method, so nothing else branches on its name:
- its prompt (`prompt`, recorded in an adapter's marquee.json) and how prompts are built;
- one-pass scoring of many users' candidate lists (`scores`; `validation_scores` for fine-tuning's validation);
- what fine-tuning needs: `training_example` (one example), `collate` (a batch), `loss` (differentiable), the
  adapter metadata it records and the model card's wording.

    from agent.llm.scorers import create_scorer
    scorer = create_scorer("segments", tokenizer, backend=backend)   # or "listwise"
    scorer.scores(users, candidate_titles)                           # log-probs over each list's candidates

Adding a scorer: a module here with a `Scorer` subclass decorated `@register_scorer("name")`, imported below;
`LLMReranker(backend, scorer="name")`, `[llm] scorer = "name"` and `marquee finetune --scorer name` then use it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

import prompts
from agent.llm.prompting import UserSummary

SCORERS: dict[str, type["Scorer"]] = {}


class UnknownScorerError(ValueError):
    """A scorer name that is not registered; the message lists the registered ones."""


def register_scorer(name: str) -> Callable[[type["Scorer"]], type["Scorer"]]:
    """Class decorator: make a `Scorer` subclass available by `name` (once)."""

    def decorate(cls: type[Scorer]) -> type[Scorer]:
        if not (isinstance(cls, type) and issubclass(cls, Scorer)):
            raise TypeError(f"@register_scorer({name!r}) needs a Scorer subclass, got {cls!r}")
        if name in SCORERS and SCORERS[name] is not cls:
            raise ValueError(f"a scorer named {name!r} is already registered ({SCORERS[name].__qualname__})")
        cls.name = name
        SCORERS[name] = cls
        return cls

    return decorate


def scorer_class(name: str) -> type["Scorer"]:
    """The registered scorer class called `name`."""
    try:
        return SCORERS[name]
    except (KeyError, TypeError):
        raise UnknownScorerError(f"unknown scorer {name!r}; registered scorers: {', '.join(sorted(SCORERS))}") \
            from None


def create_scorer(name: str, tokenizer, backend=None, **options: Any) -> "Scorer":
    return scorer_class(name)(tokenizer, backend=backend, **options)


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    m = x.max()
    return x - m - np.log(np.exp(x - m).sum())


class Scorer(ABC):
    """One scoring method. Built from a tokenizer (enough for prompts and training examples) and, to score, a
    backend (`agent.llm.backend.LocalBackend` or `agent.llm.remote.RemoteBackend`)."""

    name: ClassVar[str] = ""  # set by @register_scorer
    prompt: ClassVar[str]  # prompts/<prompt>.txt: the template this scorer fills in
    description: ClassVar[str]  # model card: how a score is computed
    training_order: ClassVar[str]  # model card: how training treats the candidates' order
    # examples are the same every epoch and collate to the packed layout finetune.training.frozen_cache runs,
    # so fine-tuning may compute the frozen lower layers once
    supports_frozen_cache: ClassVar[bool] = False
    # examples keep the candidates in the teacher's order, so a batch can carry the teacher's scores ("teacher")
    # and the loss can distil them (`distill`)
    supports_distillation: ClassVar[bool] = False
    # files the scorer's own trained parts add to an adapter folder (`save_trainable`), e.g. a score head
    extra_files: ClassVar[tuple[str, ...]] = ()
    # the scorer caches the frozen layers below `frozen_start` itself (per title, not per example)
    caches_own_frozen_layers: ClassVar[bool] = False
    frozen_start: int = 0
    # set by fine-tuning while only the scorer's own modules train (`freeze_llm_steps`): the LLM's weights do not
    # change, so a scorer may compute its LLM features once, without gradients (the head scorer does)
    llm_frozen: bool = False

    def __init__(self, tokenizer, backend=None, max_candidates: int = 20, history_items: int = 10,
                 permutations: int = 1, calibrate: bool = True, seed: int = 0,
                 distill: tuple[float, float] | None = None):
        """`distill` = (T, λ): train with KL(softmax(teacher / T) ‖ softmax(scores)) + λ × CE instead of CE."""
        if permutations < 1:
            raise ValueError("permutations must be ≥ 1")
        if distill is not None:
            if not self.supports_distillation:
                raise ValueError(f"the {self.name} scorer cannot distil a teacher (its examples reorder the "
                                 "candidates); use the segments scorer or loss = \"labels\"")
            if distill[0] <= 0 or distill[1] < 0:
                raise ValueError(f"distillation needs a temperature > 0 and a CE weight ≥ 0, got {distill}")
        self.distill = distill
        self.tokenizer = tokenizer
        self.backend = backend
        self.max_candidates = max_candidates
        self.history_items = history_items
        self.permutations = permutations
        self.calibrate = calibrate
        self.seed = seed
        if backend is not None:
            self.check_backend(backend)

    def check_backend(self, backend) -> None:
        """Raise ValueError (saying what to do instead) when `backend` cannot run this scorer."""

    def _backend(self):
        if self.backend is None:
            raise RuntimeError(f"the {self.name} scorer was built without a backend: it can build prompts and "
                               "training examples, not score")
        return self.backend

    # -- inference -------------------------------------------------------------------------------------------
    @abstractmethod
    def scores(self, users: Sequence[UserSummary], candidate_titles: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Per user, log-probs over exactly its candidates (in the caller's order); one batched pass for all."""

    def validation_scores(self, users: Sequence[UserSummary], candidate_titles: Sequence[Sequence[str]]
                          ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(uncalibrated, calibrated) scores from one pass; an order-free scorer has nothing to calibrate."""
        raw = self.scores(users, candidate_titles)
        return raw, raw

    def describe(self) -> dict[str, Any]:
        return {"scorer": self.name}

    # -- fine-tuning ------------------------------------------------------------------------------------------
    @abstractmethod
    def training_example(self, user: UserSummary, titles: Sequence[str], target: int,
                         order: Sequence[int]) -> dict[str, Any]:
        """One example: the inference prompt for `titles` and which one (`target`, an index into `titles`) is
        right. `order` is this epoch's permutation of the candidates (a scorer whose scores depend on the order
        shows them in it). Keys "input_ids" (prompt tokens) and "position" (the answer) are always present."""

    @abstractmethod
    def collate(self, examples: Sequence[dict[str, Any]], pad_id: int) -> dict[str, Any]:
        """A batch of tensors (CPU) from `training_example` outputs."""

    @abstractmethod
    def candidate_logits(self, model, batch: dict[str, Any]):
        """(B, n) differentiable float32 logits over each example's candidates."""

    def loss(self, model, batch: dict[str, Any], kind: str = "labels"):
        """(mean loss, share of examples whose best candidate is the target) over the candidates' softmax, the
        distribution `scores` reads: cross-entropy, or with `distill` the distillation loss."""
        return self.candidate_loss(self.candidate_logits(model, batch), batch)

    def candidate_loss(self, logits, batch: dict[str, Any]):
        """CE on the target; with `distill` = (T, λ) and the batch's "teacher" scores (B, n):
        KL(softmax(teacher / T) ‖ softmax(logits)) + λ × CE, the KL over each example's real candidates."""
        import torch
        import torch.nn.functional as F

        mask = batch.get("score_mask")
        if mask is not None:  # lists shorter than the batch's longest are padded
            logits = logits.masked_fill(~mask, float("-inf"))
        loss = F.cross_entropy(logits, batch["position"])
        if self.distill is not None:
            if "teacher" not in batch:
                raise ValueError("distillation needs the teacher's scores in the batch (key 'teacher')")
            temperature, ce_weight = self.distill
            teacher = batch["teacher"].to(logits.dtype) / temperature
            if mask is not None:
                teacher = teacher.masked_fill(~mask, float("-inf"))
            target = F.softmax(teacher, dim=-1)
            log_student = F.log_softmax(logits, dim=-1)
            terms = target * (torch.log(target.clamp_min(1e-30)) - log_student)
            kl = torch.where(target > 0, terms, torch.zeros_like(terms)).sum(-1).mean()
            loss = kl + ce_weight * loss
        with torch.no_grad():
            accuracy = (logits.argmax(-1) == batch["position"]).float().mean()
        return loss, accuracy

    def init_trainable(self, model, seed: int = 0) -> list:
        """Modules the scorer trains next to the LoRA (fresh, seeded); none by default."""
        return []

    def save_trainable(self, folder) -> None:
        """Write the `init_trainable` modules into an adapter / checkpoint folder (their `extra_files`)."""

    def load_trainable(self, folder) -> None:
        """Read them back from such a folder."""

    def adapter_meta(self) -> dict[str, Any]:
        """What an adapter trained with this scorer records about its prompt (marquee.json)."""
        return {"prompt": self.prompt, "prompt_version": prompts.load(self.prompt).version}


# Registration happens on import: every scorer module shipped with Marquee is imported here.
from agent.llm.scorers import head, listwise, segments  # noqa: E402,F401

__all__ = ["SCORERS", "Scorer", "UnknownScorerError", "create_scorer", "log_softmax", "register_scorer",
           "scorer_class"]
