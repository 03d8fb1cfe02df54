"""Cache the frozen lower layers once, train only the top ones (segment scorer, `lora_layers = N`).

With LoRA on the top N layers only, the layers below never change during training, and a segment example is
order-free (`agent.llm.scorers.segments`: no per-epoch permutation), so the hidden states entering the first
trainable layer are the same in every epoch. They are computed once (bf16, ~0.6 MB per example), and each training step
runs only the top N layers forward and backward: on a CPU, several epochs fit in the time one took.

For a large training set the states live on disk (`DiskCache`: one memory-mapped file + index.json under the run's
folder), so RAM stays flat whatever the number of examples, and the cache is built once: a resumed run (or one that
was stopped while caching) reuses and completes it; the index records a fingerprint of the prompts, the model and
the layer, and a mismatch starts a fresh cache.

Validation still runs the whole model through the serving code, so a mismatch here could not go unnoticed;
`tests/finetune/test_frozen_cache.py` checks that bottom + top equals the full forward pass.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

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


def fingerprint(prompts: Sequence, model_name: str, start: int, dtype) -> str:
    """What the cached states depend on: every prompt's tokens and segments, the model and the layer."""
    digest = hashlib.sha256(f"{model_name}|{start}|{dtype}".encode())
    for p in prompts:
        digest.update(np.asarray(p.input_ids, dtype=np.int64).tobytes())
        digest.update(np.asarray(p.segment_ids, dtype=np.int64).tobytes())
    return digest.hexdigest()[:32]


_STORED = {"torch.bfloat16": np.uint16, "torch.float16": np.float16, "torch.float32": np.float32}


class DiskCache:
    """Per-example (len, hidden) states in one memory-mapped file; `done` examples (in `order`) are complete."""

    INDEX, DATA = "index.json", "hidden.bin"

    def __init__(self, folder: Path, key: str, lengths: Sequence[int], hidden: int, dtype):
        import torch

        self.folder, self.key, self.dtype = Path(folder), key, dtype
        if str(dtype) not in _STORED:
            raise ValueError(f"cannot cache {dtype} states")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.hidden = int(hidden)
        self.order = np.argsort(self.lengths, kind="stable")  # computed shortest first (least padding)
        shape = (int(self.offsets[-1]), self.hidden)
        index = self.folder / self.INDEX
        previous = json.loads(index.read_text()) if index.is_file() else {}
        self.folder.mkdir(parents=True, exist_ok=True)
        if previous.get("key") == key and (self.folder / self.DATA).is_file():
            self.done = int(previous.get("done", 0))
            self.data = np.memmap(self.folder / self.DATA, dtype=_STORED[str(dtype)], mode="r+", shape=shape)
        else:
            self.done = 0
            self.data = np.memmap(self.folder / self.DATA, dtype=_STORED[str(dtype)], mode="w+", shape=shape)
            self._write_index()
        self._torch = torch

    @property
    def complete(self) -> bool:
        return self.done >= len(self.lengths)

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)

    def _write_index(self) -> None:
        tmp = self.folder / f".{self.INDEX}.tmp"
        tmp.write_text(json.dumps({"key": self.key, "done": self.done, "examples": len(self.lengths),
                                   "tokens": int(self.offsets[-1]), "hidden": self.hidden, "dtype": str(self.dtype)}))
        os.replace(tmp, self.folder / self.INDEX)

    def put(self, index: int, states) -> None:
        a, b = self.offsets[index], self.offsets[index + 1]
        states = states.detach().to("cpu", self.dtype).contiguous()
        raw = states.view(self._torch.int16).numpy().view(np.uint16) if str(self.dtype) == "torch.bfloat16" \
            else states.numpy()
        self.data[a:b] = raw

    def commit(self, done: int) -> None:
        """The first `done` examples of `order` are written: flush, then record it (a crash loses at most the
        uncommitted batch)."""
        self.data.flush()
        self.done = done
        self._write_index()

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, index: int):
        a, b = self.offsets[index], self.offsets[index + 1]
        chunk = self._torch.from_numpy(np.array(self.data[a:b]))
        return chunk.view(self._torch.bfloat16) if str(self.dtype) == "torch.bfloat16" else chunk


def build_cache(model, prompts: Sequence, pad_id: int, stop: int, device, batch_size: int = 8,
                progress: Callable[[int], None] = lambda n: None, store: DiskCache | None = None,
                commit_every: int = 64):
    """Per prompt, its (len, hidden) states after layer `stop`, on the CPU in the model's dtype: a list, or
    written into `store` (resuming after its last committed example) and returned as it."""
    if store is None:
        order, done = sorted(range(len(prompts)), key=lambda i: len(prompts[i])), 0
        out: list = [None] * len(prompts)
    else:
        order, done, out = [int(i) for i in store.order], store.done, store
        progress(done)
    since = 0
    for at in range(done, len(order), batch_size):
        rows = order[at:at + batch_size]
        chunk = [prompts[i] for i in rows]  # `prompts` may build each one on access: once per batch
        hidden = bottom_hidden(model, collate(chunk, pad_id, device), stop).cpu()
        for r, (i, prompt) in enumerate(zip(rows, chunk)):
            if store is None:
                out[i] = hidden[r, :len(prompt)].clone()
            else:
                store.put(i, hidden[r, :len(prompt)])
        progress(len(rows))
        since += len(rows)
        if store is not None and (since >= commit_every or at + batch_size >= len(order)):
            store.commit(min(at + batch_size, len(order)))
            since = 0
    return out
