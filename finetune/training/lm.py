"""LoRA training of a text-writing task (the explainer): causal-LM loss on the answer tokens only, with accelerate.

Each example is (serving prompt, kept sentence): the prompt exactly as `agent.llm.explainer` renders it, the
sentence followed by the end-of-turn token, so the trained model stops after one sentence. With LoRA on the top
`lora_layers` layers, the frozen layers below are run once per example (`finetune.training.frozen_cache`, the
same idea as the reranker's) and every step runs only the top layers, the final norm and the output layer at the
answer positions. Checkpoints (`finetune.training.checkpoints`: adapter, optimizer, schedule, RNGs, progress)
make a stopped run resumable; the best adapter by validation loss is kept in `<out>/best`.
"""
from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from agent.llm.prompting import encode


@dataclass(frozen=True)
class LMExample:
    input_ids: tuple[int, ...]
    answer_start: int  # index of the first answer token
    task: str = "explain"

    def __len__(self) -> int:
        return len(self.input_ids)


def lm_example(tokenizer, prompt: str, answer: str, task: str = "explain") -> LMExample:
    """The prompt's tokens (as serving encodes them), then the answer and the end-of-turn token."""
    ids = encode(tokenizer, prompt)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>") if getattr(tokenizer, "chat_template", None) else None
    stop = end if isinstance(end, int) and end >= 0 and end != tokenizer.unk_token_id else tokenizer.eos_token_id
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [stop]
    return LMExample(tuple(ids + answer_ids), len(ids), task)


def collate(examples: Sequence[LMExample], pad_id: int, device=None) -> dict:
    """Right-padded ids and positions, a boolean causal mask over real tokens (B, 1, L, L), and for every answer
    token the (row, position predicting it) and its id."""
    import torch

    width = max(len(e) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    real = torch.zeros((len(examples), width), dtype=torch.bool)
    rows, at, targets = [], [], []
    for r, e in enumerate(examples):
        ids[r, :len(e)] = torch.tensor(e.input_ids)
        real[r, :len(e)] = True
        for t in range(e.answer_start, len(e)):
            rows.append(r)
            at.append(t - 1)
            targets.append(e.input_ids[t])
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    mask = causal[None] & real[:, None, :] & real[:, :, None]
    mask |= torch.eye(width, dtype=torch.bool)[None]  # padding rows see themselves (no all-masked softmax row)
    positions = torch.arange(width)[None].expand(len(examples), -1).contiguous()
    batch = {"input_ids": ids, "attention_mask": mask[:, None], "position_ids": positions,
             "rows": torch.tensor(rows), "at": torch.tensor(at), "targets": torch.tensor(targets)}
    return {k: v.to(device) for k, v in batch.items()} if device is not None else batch


def answer_loss(model, batch: dict, hidden=None, start: int = 0):
    """(mean cross-entropy over the answer tokens, share predicted right). With `hidden` (the cached states entering
    layer `start`), only layers `start`+ run."""
    import torch
    import torch.nn.functional as F

    from agent.llm.scorers.segments import decoder_of

    net = decoder_of(model)
    if hidden is None:
        hidden = net.embed_tokens(batch["input_ids"])
        start = 0
    rotary = net.rotary_emb(hidden, position_ids=batch["position_ids"])
    for layer in net.layers[start:]:
        hidden = layer(hidden, attention_mask=batch["attention_mask"], position_ids=batch["position_ids"],
                       position_embeddings=rotary)
    hidden = net.norm(hidden)
    picked = hidden[batch["rows"], batch["at"]]
    logits = model.get_output_embeddings()(picked).float()
    loss = F.cross_entropy(logits, batch["targets"])
    with torch.no_grad():
        accuracy = (logits.argmax(-1) == batch["targets"]).float().mean()
    return loss, accuracy


@dataclass
class LMState:
    step: int = 0
    epoch: int = 0
    micro_in_epoch: int = 0
    horizon: int = 0
    best: float = math.inf  # validation loss (lower is better)
    best_step: int = 0
    curve: list[dict] = field(default_factory=list)


@dataclass
class LMResult:
    state: LMState
    seconds: float
    stopped: str


def _cache(model, examples: Sequence[LMExample], pad_id: int, start: int, batch_size: int, progress) -> list:
    from finetune.training.frozen_cache import bottom_hidden

    out: list = [None] * len(examples)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]))
    for at in range(0, len(order), batch_size):
        rows = order[at:at + batch_size]
        hidden = bottom_hidden(model, collate([examples[i] for i in rows], pad_id), start)
        for r, i in enumerate(rows):
            out[i] = hidden[r, :len(examples[i])].clone()
        progress(len(rows))
    return out


def _stack(hidden: list, width: int):
    import torch

    out = hidden[0].new_zeros((len(hidden), width, hidden[0].shape[-1]))
    for r, h in enumerate(hidden):
        out[r, :h.shape[0]] = h
    return out


def train_lm(peft_model, tokenizer, train: Sequence[LMExample], validation: Sequence[LMExample], out: Path, *,
             epochs: float, learning_rate: float, batch_size: int, lora_layers: int, warmup_ratio: float = 0.05,
             weight_decay: float = 0.0, max_grad_norm: float = 1.0, eval_every: int = 20, log_every: int = 5,
             checkpoint_every: int = 20, keep_checkpoints: int = 2, seed: int = 0, threads: int = 0,
             deadline: float | None = None, resume: bool = False, curve_offset: int = 0,
             log: Callable[[str], None] = print, progress: bool = True) -> LMResult:
    """Train `peft_model` (a peft LoRA model whose trainable adapter is active) on `train`; keep the best adapter
    by validation loss in `<out>/best`. `curve_offset` shifts the steps of the curve (a second round).
    Raises ValueError when `train` holds less than one batch (an epoch would have no step)."""
    if len(train) < batch_size:
        raise ValueError(f"{len(train)} training sentence(s), fewer than one batch of {batch_size}: nothing to train on")
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    from finetune.training.checkpoints import (latest_checkpoint, load_checkpoint, register_adapter_hooks,
                                               save_checkpoint)
    from finetune.training.frozen_cache import first_trainable_layer
    from finetune.training.trainer import adapt_threads, lr_factor

    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), step_scheduler_with_optimizer=False)
    set_seed(seed)
    device = accelerator.device
    pad = tokenizer.pad_token_id
    start = first_trainable_layer(peft_model, lora_layers) if lora_layers else 0
    state = LMState()
    steps_per_epoch = max(1, len(train) // batch_size)
    state.horizon = max(1, math.ceil(epochs * steps_per_epoch))
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=learning_rate, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, int(warmup_ratio * state.horizon), state.horizon, "cosine"))
    model, optimizer, scheduler = accelerator.prepare(peft_model, optimizer, scheduler)
    unwrapped = accelerator.unwrap_model(model)
    register_adapter_hooks(accelerator, unwrapped)
    checkpoint = latest_checkpoint(out) if resume else None
    if checkpoint is not None:
        horizon = state.horizon
        state = load_checkpoint(accelerator, checkpoint, LMState)
        state.horizon = max(horizon, state.step)
        log(f"resumed from {checkpoint.name}: step {state.step}")
    if not torch.cuda.is_available():
        adapt_threads(threads)
    model.eval()
    cached = {}
    if start:
        with tqdm(total=len(train) + len(validation), desc=f"caching layers 0-{start - 1}",
                  disable=not progress, dynamic_ncols=True) as bar:
            cached["train"] = _cache(unwrapped, train, pad, start, batch_size, bar.update)
            cached["validation"] = _cache(unwrapped, validation, pad, start, batch_size, bar.update)

    def batch_of(split: str, data: Sequence[LMExample], index: Sequence[int]):
        examples = [data[i] for i in index]
        batch = collate(examples, pad, device)
        hidden = _stack([cached[split][i] for i in index], batch["input_ids"].shape[1]).to(device) \
            if start else None
        return batch, hidden

    def validate() -> float:
        if not validation:
            return float("nan")
        model.eval()
        losses, weights = [], []
        with torch.no_grad():
            order = sorted(range(len(validation)), key=lambda i: len(validation[i]))
            for at in range(0, len(order), batch_size):
                index = order[at:at + batch_size]
                batch, hidden = batch_of("validation", validation, index)
                loss, _ = answer_loss(model, batch, hidden, start)
                losses.append(float(loss) * len(batch["targets"]))
                weights.append(len(batch["targets"]))
        model.train()
        return sum(losses) / sum(weights)

    def evaluate() -> None:
        value = validate()
        improved = value < state.best - 1e-6
        if improved:
            state.best, state.best_step = value, state.step
            if accelerator.is_main_process:
                unwrapped.save_pretrained(out / "best", save_embedding_layers=False)
        state.curve.append({"validation": {"step": state.step + curve_offset, "loss": value}})
        log(f"validation loss @ step {state.step}: {value:.4f}{' *best*' if improved else ''}")

    if state.step == 0 and not state.curve:
        evaluate()
    model.train()
    stopped = "epochs"
    bar = tqdm(total=state.horizon, initial=state.step, desc="finetune explain", disable=not progress,
               dynamic_ncols=True)
    window: list[tuple[float, float]] = []
    while state.step < state.horizon:
        order = np.random.default_rng([seed, state.epoch]).permutation(len(train))
        while state.micro_in_epoch + batch_size <= len(train) and state.step < state.horizon:
            if not torch.cuda.is_available():
                adapt_threads(threads)
            index = order[state.micro_in_epoch:state.micro_in_epoch + batch_size].tolist()
            batch, hidden = batch_of("train", train, index)
            with contextlib.nullcontext():
                loss, accuracy = answer_loss(model, batch, hidden, start)
                accelerator.backward(loss)
            accelerator.clip_grad_norm_(trainable, max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            state.micro_in_epoch += batch_size
            window.append((float(loss.detach()), float(accuracy)))
            bar.update(1)
            bar.set_postfix(loss=f"{window[-1][0]:.3f}")
            if state.step % log_every == 0:
                loss_avg, acc_avg = np.mean(window, axis=0)
                state.curve.append({"step": state.step + curve_offset, "loss": float(loss_avg),
                                    "accuracy": float(acc_avg), "lr": scheduler.get_last_lr()[0]})
                window.clear()
            if state.step % eval_every == 0:
                evaluate()
            if state.step % checkpoint_every == 0:
                save_checkpoint(accelerator, out, state, keep_checkpoints)
            if deadline is not None and time.perf_counter() > deadline:
                stopped = "time budget"
                break
        else:
            state.epoch, state.micro_in_epoch = state.epoch + 1, 0
            continue
        break
    bar.close()
    if state.step % eval_every:
        evaluate()
    save_checkpoint(accelerator, out, state, keep_checkpoints)
    (out / "curve.json").write_text(json.dumps(asdict(state)["curve"], indent=1) + "\n", encoding="utf-8")
    return LMResult(state=state, seconds=time.perf_counter() - started, stopped=stopped)
