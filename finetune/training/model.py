"""The trainable reranker: base LLM (same loader as serving) + a peft LoRA, batching and the loss.

The loss reads ONE position per example: the logits right after the prompt, where the reranker reads its label
scores. `loss = "labels"` is the cross-entropy of the softmax restricted to the prompt's label tokens (exactly
the distribution the reranker uses); `loss = "token"` is the plain next-token cross-entropy over the whole
vocabulary on the label token (the classic SFT loss, restricted to that token).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.llm.loading import LoadedModel, ModelNotAvailable, choose_device, load_model_uncached, resolve_model_path
from retrieval.config import FinetuneConfig


def load_base(settings, home: Path, cfg: FinetuneConfig, device: str | None = None) -> LoadedModel:
    """The base model exactly as the reranker loads it (no adapter), or 4-bit for QLoRA on CUDA."""
    llm = settings.llm
    if not cfg.qlora:
        return load_model_uncached(llm.model, home, adapter="none", device=device or llm.device, dtype=llm.dtype)
    import torch

    if not torch.cuda.is_available():
        raise ModelNotAvailable("qlora = true needs a CUDA GPU; set qlora = false to train on this machine")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ModelNotAvailable("qlora = true needs bitsandbytes: pip install bitsandbytes (CUDA machines)") from None
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    path = resolve_model_path(llm.model, home)
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16)
    device = device or choose_device(llm.device)
    net = AutoModelForCausalLM.from_pretrained(path, quantization_config=quant, device_map={"": device})
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    net = prepare_model_for_kbit_training(net, use_gradient_checkpointing=False)
    return LoadedModel(model=net, tokenizer=tokenizer, name=llm.model, device=device, dtype=torch.bfloat16)


def attach_lora(model, cfg: FinetuneConfig):
    """Wrap the base model with a fresh, seeded LoRA (fp32 adapter weights even on a bf16 base)."""
    import torch
    from peft import LoraConfig, get_peft_model

    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in cfg.target_modules if m not in present]
    if missing:
        raise ValueError(f"target_modules {missing} are not modules of this model; it has e.g. "
                         f"{sorted(m for m in present if m.endswith('proj'))[:8]}")
    layers = None
    if cfg.lora_layers:
        total = model.config.num_hidden_layers
        if cfg.lora_layers > total:
            raise ValueError(f"lora_layers = {cfg.lora_layers} but the model has {total} layers")
        layers = list(range(total - cfg.lora_layers, total))
    torch.manual_seed(cfg.seed)
    lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.target_modules), layers_to_transform=layers, bias="none",
                      task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def collate(examples: list[dict[str, Any]], pad_id: int):
    """Left-padded prompt tokens (label token removed), real-token position ids, targets for both losses;
    segment-scorer examples become one packed, block-masked batch (`agent.llm.segments.collate`)."""
    import torch

    if "segments" in examples[0]:
        from agent.llm import segments

        batch = {**segments.collate([ex["segments"] for ex in examples], pad_id),
                 "position": torch.tensor([ex["position"] for ex in examples]),
                 "yes_no": torch.tensor(examples[0]["yes_no"])}
        if "hidden" in examples[0]:  # cached frozen layers: right-padded like the ids
            hidden = torch.zeros((len(examples), batch["input_ids"].shape[1], examples[0]["hidden"].shape[-1]),
                                 dtype=examples[0]["hidden"].dtype)
            for row, ex in enumerate(examples):
                hidden[row, :ex["hidden"].shape[0]] = ex["hidden"]
            batch.update(hidden=hidden, start=torch.tensor(examples[0]["start"]))
        return batch

    prompts = [ex["input_ids"][:-1] for ex in examples]
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, toks in enumerate(prompts):
        ids[row, width - len(toks):] = torch.tensor(toks)
        mask[row, width - len(toks):] = 1
    return {"input_ids": ids, "attention_mask": mask, "position_ids": (mask.cumsum(-1) - 1).clamp(min=0),
            "label_token": torch.tensor([ex["labels"][-1] for ex in examples]),
            "label_token_ids": torch.tensor([ex["label_token_ids"] for ex in examples]),
            "position": torch.tensor([ex["position"] for ex in examples])}


def loss_and_accuracy(model, batch: dict, kind: str):
    """(mean loss, share of examples whose best label is the target) for one micro-batch."""
    import torch
    import torch.nn.functional as F

    if "score_at" in batch:  # segment scorer: softmax over the candidates' Yes−No logits (its "labels")
        from agent.llm.segments import segment_logits

        yes_no = tuple(batch["yes_no"].tolist())
        if "hidden" in batch:
            from finetune.training.frozen_cache import top_segment_logits

            scores = top_segment_logits(model, batch, yes_no, int(batch["start"]))
        else:
            scores = segment_logits(model, batch, yes_no)
        scores = scores.masked_fill(~batch["score_mask"], float("-inf"))
        loss = F.cross_entropy(scores, batch["position"])
        with torch.no_grad():
            accuracy = (scores.argmax(-1) == batch["position"]).float().mean()
        return loss, accuracy
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   position_ids=batch["position_ids"], logits_to_keep=1).logits[:, -1].float()
    label_logits = logits.gather(1, batch["label_token_ids"])
    if kind == "labels":
        loss = F.cross_entropy(label_logits, batch["position"])
    else:
        loss = F.cross_entropy(logits, batch["label_token"])
    with torch.no_grad():
        accuracy = (label_logits.argmax(-1) == batch["position"]).float().mean()
    return loss, accuracy


def training_module(peft_model, kind: str):
    """`peft_model` behind a forward(batch) → (loss, accuracy). `accelerator.prepare` wraps THIS module: with
    several processes, DistributedDataParallel averages gradients only for a forward that runs through its
    wrapper, and the segment scorer's forward reads the decoder's hidden states rather than the model's logits."""
    import torch

    class LossForward(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = peft_model

        def forward(self, batch: dict):
            return loss_and_accuracy(self.model, batch, kind)

    return LossForward()


def to_device(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}
