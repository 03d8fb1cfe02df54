"""LoRA training of the LLM reranker (peft + accelerate): one script for a laptop CPU and `accelerate launch`.

Flow: leave-one-out split → instruction examples from TRAIN (finetune.data.instructions) → base model + LoRA →
optimizer steps with gradient accumulation, warmup + cosine/linear decay, checkpoints every N steps through
`accelerator.save_state` (finetune.training.checkpoints; `--resume` restores weights, optimizer, schedule and RNGs),
validation NDCG@10 through the serving reranker every M steps with early stopping → the best adapter, its tuned
fusion weight (marquee.json), a model card and a training-curve PNG in the output folder.

The wall-clock budget (`max_minutes`) is planned, not just enforced: after a few steps the LR schedule's horizon is
set to the number of steps that fit, so a time-bounded run still finishes its decay.

Several processes (`accelerate launch --multi_gpu --num_processes N`; on a machine without GPUs they form a gloo
group on the CPU): the forward runs through the DistributedDataParallel wrapper (finetune.training.model
`training_module`), so gradients are averaged; each process trains on its own fixed shard of the examples
(reshuffled within the shard every epoch), so the frozen-layer cache holds that shard only; the main process
validates and shares the figures (the weights are the same everywhere), and so are the time budget's decisions,
so that all of them stop at the same step.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.config import FinetuneConfig

BEST = "best"


def lr_factor(step: int, warmup: int, total: int, kind: str) -> float:
    """Multiplier of the peak LR after `step` optimizer steps: linear warmup, then cosine / linear / constant."""
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    if kind == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(total - warmup, 1))
    return 0.5 * (1 + math.cos(math.pi * progress)) if kind == "cosine" else 1.0 - progress


def adapt_threads(requested: int) -> int:
    """Torch intra-op threads for the next step. On a CPU shared with other busy processes, OpenMP threads wait
    for each other at every barrier (measured here: 2 threads ran a LoRA step 6× slower than 1 under load), so
    `requested = 0` uses one thread while the load exceeds the core count and every core otherwise."""
    import torch

    cores = os.cpu_count() or 1
    if requested > 0:
        threads = requested
    else:
        try:
            busy = os.getloadavg()[0] > cores + 0.5
        except OSError:
            busy = False
        threads = 1 if busy else cores
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


@dataclass
class State:
    """Everything a resumed run needs besides the weights and optimizer moments."""

    step: int = 0  # optimizer steps done
    epoch: int = 0
    micro_in_epoch: int = 0  # micro-batches of `epoch` already consumed
    horizon: int = 0  # planned total optimizer steps (LR schedule)
    planned: bool = False  # horizon adjusted to the time budget
    best: float = -1.0
    best_step: int = 0
    waited: int = 0
    curve: list[dict] = field(default_factory=list)  # {"step", "loss", "accuracy", "lr"} and validation points


@dataclass
class TrainResult:
    out: Path
    state: State
    stats: dict[str, Any]
    final: Any  # ValidationResult on the tuning users
    stopped: str  # why training ended
    seconds: float


def _select(users: np.ndarray, n: int, seed: int) -> np.ndarray:
    if n <= 0 or n >= users.size:
        return users
    return np.sort(np.random.default_rng(seed).choice(users, size=n, replace=False))


def _cache_frozen_layers(data, base, cfg: FinetuneConfig, tokenizer, device, log, progress: bool, folder: Path,
                         shard: np.ndarray) -> None:
    """The hidden states below the LoRA layers of this process's examples (`shard`), computed once into a
    memory-mapped file under `folder` (finetune.training.frozen_cache.DiskCache); a resumed run reuses and
    completes it."""
    from tqdm.auto import tqdm

    from finetune.training.frozen_cache import DiskCache, build_cache, fingerprint, first_trainable_layer

    start = first_trainable_layer(base.model, cfg.lora_layers)
    began = time.perf_counter()

    class Prompts:  # built on access, so the prompts of a large training set never sit in memory together
        def __len__(self):
            return len(shard)

        def __getitem__(self, j):
            return data[int(shard[j])]["segments"]

    prompts = Prompts()
    lengths = [len(prompts[j]) for j in range(len(shard))]
    key = fingerprint((prompts[j] for j in range(len(shard))), base.name, start, base.dtype)
    store = DiskCache(folder, key, lengths, base.model.config.hidden_size, base.dtype)
    if store.done:
        log(f"frozen-layer cache {folder}: {store.done}/{len(store)} examples already computed (reused)")
    with tqdm(total=len(shard), desc=f"caching layers 0-{start - 1}", disable=not progress, dynamic_ncols=True) as bar:
        store = build_cache(base.model, prompts, tokenizer.pad_token_id, start, device,
                            batch_size=cfg.batch_size, progress=bar.update, store=store)
    data.cache = store if len(shard) == len(data) else _ShardCache(store, shard)
    data.cache_start = start
    log(f"cached the frozen layers 0-{start - 1} of {len(shard)} examples: {store.nbytes / 1e6:.0f} MB on disk in "
        f"{time.perf_counter() - began:.0f}s; training steps run layers {start}+ only")


class _ShardCache:
    """An example's cached states by its index in the whole training set, for a process that cached its shard."""

    def __init__(self, store, shard: np.ndarray) -> None:
        self.store, self.position = store, {int(i): j for j, i in enumerate(shard)}

    def __getitem__(self, index: int):
        return self.store[self.position[int(index)]]


def _instances(cfg: FinetuneConfig, split, users, fit: dict, log):
    """Training targets with the teacher's candidates and scores, the teacher never having seen the targets:
    nested leave-one-out (teacher_folds = 0) or user-fold cross-fitting (teacher_folds ≥ 2)."""
    from finetune.data.instructions import build_instances, cross_fitted_instances, fit_retriever, retriever_split

    if cfg.teacher_folds >= 2:
        return cross_fitted_instances(split, lambda sub: fit_retriever(cfg.retriever, sub, **fit), cfg.teacher_folds,
                                      cfg.targets_per_user, cfg.candidates, cfg.min_history, users, cfg.seed, log)
    log(f"fitting retriever {cfg.retriever!r} on train minus the instruction targets (candidates for training)")
    proposer = fit_retriever(cfg.retriever, retriever_split(split, cfg.targets_per_user), **fit)
    return build_instances(split, proposer, cfg.targets_per_user, cfg.candidates, cfg.min_history, users)


def _main_decides(accelerator, value):
    """The main process's `value`, on every process (decisions that must not differ between them)."""
    if accelerator.num_processes == 1:
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value], from_process=0)[0]


def train(cfg: FinetuneConfig, settings, dataset, home: Path, out: Path, resume: bool = False,
          log: Callable[[str], None] = print, progress: bool = True, command: str = "",
          data_only: bool = False) -> TrainResult | None:
    """Train (see the module docstring). `data_only`: stop once the retrievers / teachers are fitted (their
    caches under `home`) and the examples built; returns None."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, set_seed
    from peft import set_peft_model_state_dict
    from tqdm.auto import tqdm

    from agent.llm.backend import LocalBackend
    from agent.llm.loading import LoadedModel, base_model_id
    from agent.llm.scorers import create_scorer
    from finetune.data.instructions import InstructionDataset, fit_retriever
    from finetune.training.distillation import choose_temperature
    from finetune.data.splits import leave_one_out
    from finetune.training.card import write_outputs
    from finetune.training.checkpoints import (CHECKPOINTS, latest_checkpoint, load_checkpoint,
                                               register_adapter_hooks, save_checkpoint)
    from finetune.training.model import attach_lora, load_base, to_device, training_module
    from finetune.training.validation import ValidationSet, validate

    started = time.perf_counter()
    # The budget bounds data preparation + the training loop; the last validation and the fusion-weight tuning
    # follow it (their cost depends on eval_users / tune_users and is logged).
    deadline = started + cfg.max_minutes * 60
    out = Path(out)
    checkpoint = latest_checkpoint(out) if resume else None
    if resume and checkpoint is None:
        log(f"--resume: no checkpoint under {out / CHECKPOINTS}; starting from step 0")
    # step_scheduler_with_optimizer=False: the schedule counts optimizer steps, however many processes run
    # while the LLM is frozen (`freeze_llm_steps`) its LoRA weights get no gradient, which several processes'
    # gradient averaging must be told about
    handlers = [DistributedDataParallelKwargs(find_unused_parameters=True)] if cfg.freeze_llm_steps else []
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), step_scheduler_with_optimizer=False,
                              mixed_precision="bf16" if torch.cuda.is_available() and not cfg.qlora else "no",
                              kwargs_handlers=handlers)
    main = accelerator.is_main_process
    set_seed(cfg.seed)
    if accelerator.num_processes > 1:
        log(f"process {accelerator.process_index + 1} of {accelerator.num_processes} "
            f"({accelerator.distributed_type.value}, {torch.distributed.get_backend()} backend) on {accelerator.device}")

    # --- data: instruction examples from TRAIN, validation users from the validation split -------------
    split = leave_one_out(dataset.interactions)
    users = _select(split.evaluated_users, cfg.max_users, cfg.seed)
    fit = dict(dataset=dataset, home=home, seed=cfg.seed, settings=settings, params=cfg.retriever_params, log=log)
    instances = _instances(cfg, split, users, fit, log)
    log(f"fitting retriever {cfg.retriever!r} on train (validation candidates and fusion partner)")
    retriever = fit_retriever(cfg.retriever, split, **fit)
    eval_set = ValidationSet.build(split, retriever, cfg.candidates, _select(users, cfg.eval_users, cfg.seed + 1))
    tune_set = ValidationSet.build(split, retriever, cfg.candidates, _select(users, cfg.tune_users, cfg.seed + 2))

    if data_only:
        log(f"data only: {len(instances)} training examples, {len(eval_set)} + {len(tune_set)} validation users; "
            f"retriever caches under {home / 'models'}")
        return None
    distill = None
    if cfg.loss == "distill":
        temperature = cfg.distill_temperature or choose_temperature(eval_set)[0]
        distill = (temperature, cfg.ce_weight)
        log(f"distillation: T = {temperature:g}{' (chosen on validation)' if not cfg.distill_temperature else ''}, "
            f"λ = {cfg.ce_weight:g}")

    # --- model ---------------------------------------------------------------------------------------
    base = load_base(settings, home, cfg, device=str(accelerator.device))
    tokenizer = base.tokenizer
    scorer = create_scorer(cfg.scorer, tokenizer, max_candidates=cfg.candidates, history_items=cfg.history_items,
                           distill=distill)
    data = InstructionDataset(instances, scorer, dataset.catalog, cfg.seed)
    stats = {**data.stats(), "validation_users": len(eval_set), "tune_users": len(tune_set),
             "validation_recall@n": eval_set.recall, "tune_recall@n": tune_set.recall,
             "prompt_tokens_mean": float(np.mean([len(data[i]["input_ids"]) for i in range(min(50, len(data)))]))}
    log("data: " + json.dumps(stats))
    shard = np.arange(len(data))[accelerator.process_index::accelerator.num_processes]  # this process's examples
    if scorer.supports_frozen_cache and cfg.lora_layers and cfg.cache_frozen:
        # several processes: each caches its own shard in its own folder
        folder = out / "frozen-cache" if accelerator.num_processes == 1 else \
            out / "frozen-cache" / f"process-{accelerator.process_index}-of-{accelerator.num_processes}"
        _cache_frozen_layers(data, base, cfg, tokenizer, accelerator.device, log, progress and main, folder, shard)
    elif scorer.caches_own_frozen_layers and cfg.lora_layers and cfg.cache_frozen:
        from finetune.training.frozen_cache import first_trainable_layer

        scorer.frozen_start = first_trainable_layer(base.model, cfg.lora_layers)
    peft_model = attach_lora(base.model, cfg)
    # the saved adapter_config.json names the base by its hub id, not this machine's folder
    peft_model.peft_config["default"].base_model_name_or_path = base_model_id(settings.llm.model)
    extras = [m.to(accelerator.device) for m in scorer.init_trainable(peft_model, cfg.seed)]  # e.g. a score head
    trainable = [p for p in peft_model.parameters() if p.requires_grad] + [p for m in extras for p in m.parameters()]
    optimizer = torch.optim.AdamW(trainable, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    state = State()
    micro_per_epoch = (len(data) // accelerator.num_processes // cfg.batch_size) // cfg.grad_accum * cfg.grad_accum
    if micro_per_epoch == 0:
        raise ValueError(f"{len(data)} examples are fewer than one optimizer step "
                         f"(batch_size {cfg.batch_size} × grad_accum {cfg.grad_accum} × processes)")
    steps_per_epoch = micro_per_epoch // cfg.grad_accum
    state.horizon = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
    # The schedule reads `state` when it steps, so a resumed (re-planned) horizon applies from the next step on.
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, int(cfg.warmup_ratio * state.horizon), state.horizon, cfg.schedule))
    # the scorer's trained parts (e.g. a score head) join the wrapped module, so several processes average their
    # gradients too
    model, optimizer, scheduler = accelerator.prepare(training_module(peft_model, cfg.loss, scorer, extras),
                                                      optimizer, scheduler)
    unwrapped = accelerator.unwrap_model(model).model  # the peft model: saved, validated, served
    register_adapter_hooks(accelerator, unwrapped, scorer)
    if checkpoint is not None:
        configured = state.horizon
        state = load_checkpoint(accelerator, checkpoint, State)
        # The resumed run follows the current config and budget (e.g. more steps), re-planned below.
        state.horizon, state.planned = max(configured, state.step), False
        log(f"resumed from {checkpoint.name}: step {state.step}, epoch {state.epoch}, "
            f"lr {scheduler.get_last_lr()[0]:.2e}")

    backend = LocalBackend(LoadedModel(model=unwrapped, tokenizer=tokenizer, name=base.name, device=base.device,
                                       dtype=base.dtype, extras={"cache": {}, **{"score_head": m for m in extras}}),
                           batch_size=settings.llm.batch_size)
    calibrate = settings.llm.calibrate
    best_dir = out / BEST
    out.mkdir(parents=True, exist_ok=True)

    def run_validation() -> float:
        if not torch.cuda.is_available():
            adapt_threads(cfg.threads)
        model.eval()
        for m in extras:
            m.eval()
        # the main process validates (the weights are the same everywhere); the others wait for its figures
        result = _main_decides(accelerator, validate(backend, dataset.catalog, eval_set, cfg.fusion_grid, calibrate,
                                                     cfg.history_items, cfg.scorer, cfg.fusion) if main else None)
        model.train()
        for m in extras:
            m.train()
        point = {"step": state.step, **{k: v for k, v in result.as_dict().items() if not k.startswith("by_")}}
        state.curve.append({"validation": point})
        improved = result.best > state.best + 1e-9 or state.best < 0
        if improved:
            state.best, state.best_step, state.waited = result.best, state.step, 0
            if main:
                unwrapped.save_pretrained(best_dir, save_embedding_layers=False)
                scorer.save_trainable(best_dir)
        elif state.step > 0:
            state.waited += 1
        log(f"validation @ step {state.step}: retriever {result.retriever:.4f}, LLM alone {result.llm_only:.4f}, "
            f"fused {result.best:.4f} (w={result.best_weight}) {'*best*' if improved else ''} "
            f"[{result.seconds:.0f}s, {len(eval_set)} users]")
        return result.seconds

    if state.step == 0 and not any("validation" in p for p in state.curve):
        eval_seconds = run_validation()  # the zero-shot starting point of the curve
    else:
        eval_seconds = next((p["validation"]["seconds"] for p in reversed(state.curve) if "validation" in p), 0.0)

    model.train()
    stopped = "steps"
    bar = tqdm(total=state.horizon, initial=state.step, desc="finetune", disable=not (progress and main),
               dynamic_ncols=True)
    window: list[tuple[float, float]] = []
    step_started, first_step = time.perf_counter(), state.step
    while state.step < state.horizon:
        data.epoch = state.epoch
        # one process: a permutation of all examples per epoch; several: of each one's own shard
        order = shard[np.random.default_rng([cfg.seed, state.epoch]).permutation(len(shard))]
        while state.micro_in_epoch < micro_per_epoch and state.step < state.horizon:
            losses, accs = [], []
            if not torch.cuda.is_available():
                adapt_threads(cfg.threads)
            scorer.llm_frozen = state.step < cfg.freeze_llm_steps
            for k in range(cfg.grad_accum):
                at = (state.micro_in_epoch + k) * cfg.batch_size
                batch = to_device(scorer.collate([data[int(i)] for i in order[at:at + cfg.batch_size]],
                                                 tokenizer.pad_token_id), accelerator.device)
                sync = contextlib.nullcontext() if k == cfg.grad_accum - 1 else accelerator.no_sync(model)
                with sync:
                    loss, acc = model(batch)
                    accelerator.backward(loss / cfg.grad_accum)
                losses.append(float(loss.detach()))
                accs.append(float(acc))
            accelerator.clip_grad_norm_(trainable, cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if not scorer.llm_frozen:
                backend.llm.extras["cache"].clear()  # the LLM's weights moved: memoised features are stale
            state.step += 1
            state.micro_in_epoch += cfg.grad_accum
            window.append((float(np.mean(losses)), float(np.mean(accs))))
            lr = scheduler.get_last_lr()[0]
            bar.update(1)
            bar.set_postfix(loss=f"{window[-1][0]:.3f}", acc=f"{window[-1][1]:.2f}", lr=f"{lr:.1e}")
            if state.step % cfg.log_every == 0:
                loss_avg, acc_avg = np.mean(window, axis=0)
                state.curve.append({"step": state.step, "loss": float(loss_avg), "accuracy": float(acc_avg),
                                    "lr": lr, "epoch": state.epoch})
                window.clear()
                if not progress or state.step % (cfg.log_every * 5) == 0:
                    log(f"step {state.step}/{state.horizon}: loss {loss_avg:.4f}, acc {acc_avg:.3f}, lr {lr:.2e}, "
                    f"{torch.get_num_threads()} thread(s)")
            if cfg.plan_schedule and not state.planned and state.step - first_step >= min(10, state.horizon - first_step):
                # Fit the schedule into the time budget, now that a step's cost is known.
                per_step = (time.perf_counter() - step_started) / (state.step - first_step)
                if per_step:
                    per_step_with_eval = per_step + eval_seconds / cfg.eval_every
                    fits = _main_decides(accelerator,
                                         state.step + int((deadline - time.perf_counter()) / per_step_with_eval))
                    if fits < state.horizon:
                        log(f"time budget: {per_step:.1f}s/step → planning {fits} steps instead of {state.horizon}")
                        state.horizon = max(state.step + 1, fits)
                        bar.total = state.horizon
                state.planned = True
            if state.step % cfg.eval_every == 0 or state.step == state.horizon:
                eval_seconds = run_validation()
                if state.waited >= cfg.patience:
                    stopped = f"early stopping (no gain in {cfg.patience} validations)"
                    break
            if state.step % cfg.checkpoint_every == 0:
                save_checkpoint(accelerator, out, state, cfg.keep_checkpoints)
            if _main_decides(accelerator, time.perf_counter() > deadline):
                stopped = f"time budget ({cfg.max_minutes:g} min)"
                break
        else:
            if state.micro_in_epoch >= micro_per_epoch:
                state.epoch, state.micro_in_epoch = state.epoch + 1, 0
            continue
        break
    bar.close()
    if accelerator.num_processes > 1:  # DistributedDataParallel keeps every process's weights identical: show it
        digest = hashlib.sha256(b"".join(p.detach().float().cpu().numpy().tobytes() for p in trainable))
        log(f"process {accelerator.process_index + 1} of {accelerator.num_processes}: trained LoRA weights "
            f"sha256 {digest.hexdigest()[:16]} after {state.step} steps")
    if state.step % cfg.eval_every and not any(p.get("validation", {}).get("step") == state.step for p in state.curve):
        run_validation()
    save_checkpoint(accelerator, out, state, cfg.keep_checkpoints)
    log(f"training stopped after {state.step} steps: {stopped}; best validation {state.best:.4f} "
        f"at step {state.best_step}")

    # --- final: best adapter, fusion weight tuned on the tuning users, card + curve ---------------------
    from peft import PeftModel  # noqa: F401  (the best weights are loaded into the same wrapper)
    from safetensors.torch import load_file

    set_peft_model_state_dict(unwrapped, load_file(str(best_dir / "adapter_model.safetensors")))
    scorer.load_trainable(best_dir)
    backend.llm.extras["cache"].clear()  # features memoised under the last step's weights, not the best ones
    model.eval()
    for m in extras:
        m.eval()
    if not torch.cuda.is_available():
        adapt_threads(cfg.threads)
    final = _main_decides(accelerator, validate(backend, dataset.catalog, tune_set, cfg.fusion_grid, calibrate,
                                                cfg.history_items, cfg.scorer, cfg.fusion, cfg.gate_coverages,
                                                cfg.gate_k) if main else None)
    chosen = final.fusion_choice()
    gate = (f", margin gate {chosen.gate_margin:.3f} (coverage {final.gated[0]:g}) → {final.gated[3]:.4f}"
            if chosen.gate_margin is not None else "")
    log(f"fusion ({cfg.fusion}) on {len(tune_set)} validation users: weight {final.best_weight} → NDCG@10 "
        f"{final.best:.4f} (retriever {final.retriever:.4f}, LLM alone {final.llm_only:.4f}){gate}")
    stats = {**stats, "cpu_minutes": round(time.process_time() / 60, 1),
             "distill": None if distill is None else {"temperature": distill[0], "ce_weight": distill[1]}}
    result = TrainResult(out=out, state=state, stats=stats, final=final, stopped=stopped,
                         seconds=time.perf_counter() - started)
    if main:
        write_outputs(result, cfg, settings, unwrapped, scorer, command)
    accelerator.wait_for_everyone()
    return result


def ship(out: Path, dest: Path, files: tuple[str, ...] | None = None) -> list[Path]:
    """Copy a finished run's deliverables (`files`: by default the reranker's adapter, marquee.json, card, curve)
    into `dest` as one swap: the files go to a temporary sibling folder first, so a crash leaves the previous
    adapter whole."""
    from finetune.training.card import SHIPPED_FILES

    if files is None:  # the reranker's run: the scorer's own trained parts (e.g. a score head) travel with it
        from agent.llm.scorers import scorer_class

        try:
            scorer = json.loads((Path(out) / "marquee.json").read_text()).get("scorer")
        except (OSError, ValueError, AttributeError):
            scorer = None  # not a finished run: reported as missing files below
        files = (*SHIPPED_FILES, *(scorer_class(scorer).extra_files if scorer else ()))
    missing = [name for name in files if not (Path(out) / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{out} is not a finished run (missing {', '.join(missing)})")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    old = dest.parent / f".{dest.name}.old"
    try:
        for name in files:
            shutil.copyfile(Path(out) / name, tmp / name)
        shutil.rmtree(old, ignore_errors=True)
        if dest.exists():
            os.replace(dest, old)
        try:
            os.replace(tmp, dest)
        except OSError:
            if old.exists():
                os.replace(old, dest)  # put the previous adapter back
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    return [dest / name for name in files]
