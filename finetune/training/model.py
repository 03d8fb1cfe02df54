"""The trainable reranker: base LLM (same loader as serving) + a peft LoRA, and the training loss.

Batching and the loss belong to the scorer being trained (`agent.llm.scorers`: `collate`, `loss`), so training
reads exactly the scores the reranker serves; this module adds the frozen-layer cache's shortcut.
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


def loss_and_accuracy(model, batch: dict, kind: str, scorer):
    """(mean loss, share of examples whose best candidate is the target) for one micro-batch of `scorer`'s
    examples. A batch carrying cached frozen-layer states runs only the top layers (finetune.training.frozen_cache)."""
    if "hidden" in batch:
        from finetune.training.frozen_cache import top_segment_logits

        logits = top_segment_logits(model, batch, tuple(batch["yes_no"].tolist()), int(batch["start"]))
        return scorer.candidate_loss(logits, batch)
    return scorer.loss(model, batch, kind)


def training_module(peft_model, kind: str, scorer, extras=()):
    """`peft_model` (and the scorer's own trained modules `extras`, e.g. a score head) behind a
    forward(batch) → (loss, accuracy). `accelerator.prepare` wraps THIS module: with several processes,
    DistributedDataParallel averages gradients only for the parameters of the module it wraps and a forward that
    runs through its wrapper, and the segment scorer's forward reads the decoder's hidden states rather than the
    model's logits."""
    import torch

    class LossForward(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = peft_model
            self.extras = torch.nn.ModuleList(extras)  # registered only; the scorer calls them itself

        def forward(self, batch: dict):
            return loss_and_accuracy(self.model, batch, kind, scorer)

    return LossForward()


def to_device(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}
