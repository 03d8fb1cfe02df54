"""Cache the frozen lower layers once, train only the top ones (segment scorer, `lora_layers = N`).

With LoRA on the top N layers only, the layers below never change during training, and a segment example is
order-free (`agent.llm.scorers.segments`: no per-epoch permutation), so the hidden states entering the first
trainable layer are the same in every epoch. They are computed once (bf16, ~0.6 MB per example), and each training step
runs only the top N layers forward and backward: on a CPU, several epochs fit in the time one took.

Validation still runs the whole model through the serving code, so a mismatch here could not go unnoticed;
`tests/finetune/test_frozen_cache.py` checks that bottom + top equals the full forward pass.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from agent.llm.scorers.segments import collate, decoder_of


def first_trainable_layer(model, lora_layers: int) -> int:
    return decoder_of(model).config.num_hidden_layers - lora_layers


def bottom_hidden(model, batch: dict, stop: int):
    """Hidden states after layers [0, stop) (no grad: these layers are frozen)."""
    import torch

    net = decoder_of(model)
    with torch.no_grad():
        hidden = net.embed_tokens(batch["input_ids"])
        rotary = net.rotary_emb(hidden, position_ids=batch["position_ids"])
        for layer in net.layers[:stop]:
            hidden = layer(hidden, attention_mask=batch["attention_mask"], position_ids=batch["position_ids"],
                           position_embeddings=rotary)
    return hidden


def top_segment_logits(model, batch: dict, yes_no: tuple[int, int], start: int):
    """`agent.llm.scorers.segments.segment_logits`, continued from cached hidden states at layer `start`."""
    import torch

    net = decoder_of(model)
    hidden = batch["hidden"]
    rotary = net.rotary_emb(hidden, position_ids=batch["position_ids"])
    for layer in net.layers[start:]:
        hidden = layer(hidden, attention_mask=batch["attention_mask"], position_ids=batch["position_ids"],
                       position_embeddings=rotary)
    hidden = net.norm(hidden)
    picked = torch.gather(hidden, 1, batch["score_at"][..., None].expand(-1, -1, hidden.shape[-1]))
    head = model.get_output_embeddings()
    return picked.float() @ (head.weight[yes_no[0]] - head.weight[yes_no[1]]).float()


def build_cache(model, prompts: Sequence, pad_id: int, stop: int, device, batch_size: int = 8,
                progress: Callable[[int], None] = lambda n: None) -> list:
    """Per prompt, its (len, hidden) states after layer `stop`, on the CPU in the model's dtype."""
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list = [None] * len(prompts)
    for at in range(0, len(order), batch_size):
        rows = order[at:at + batch_size]
        hidden = bottom_hidden(model, collate([prompts[i] for i in rows], pad_id, device), stop).cpu()
        for r, i in enumerate(rows):
            out[i] = hidden[r, :len(prompts[i])].clone()
        progress(len(rows))
    return out
