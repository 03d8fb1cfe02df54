"""Local transformers backend: batched next-token label scores (one forward) and batched greedy generation.

The local backend and `agent.llm.remote.RemoteBackend` offer the same calls, so the reranker and the explainer
run unchanged against an in-process model or an OpenAI-compatible server (vLLM).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from agent.llm.loading import LoadedModel
from agent.llm.prompting import RerankPrompt, encode


class Backend(Protocol):
    tokenizer: object
    model_id: str

    def label_logprobs(self, prompts: Sequence[RerankPrompt]) -> list[np.ndarray]:
        """Per prompt, next-token log-probabilities of its label tokens (up to one additive constant per prompt)."""

    def generate(self, texts: Sequence[str], max_new_tokens: int) -> list[tuple[str, bool]]:
        """Greedy continuations; the flag says whether the model stopped by itself (False = hit the budget)."""


class LocalBackend:
    """`adapter`: which LoRA adapter of the shared model this backend runs with (`LoadedModel.using`: None = the
    model's own, i.e. the reranker's; "explain" = the explainer's; NO_ADAPTER = the base model)."""

    def __init__(self, llm: LoadedModel, batch_size: int = 8, adapter: str | None = None):
        self.llm = llm
        self.tokenizer = llm.tokenizer
        self.adapter = adapter
        self.model_id = llm.adapter_id(adapter)
        self.batch_size = max(1, batch_size)

    def _batch(self, token_lists: Sequence[list[int]]):
        """Left-padded tensors; position ids count real tokens only, so padding does not shift positions."""
        import torch

        width = max(len(t) for t in token_lists)
        ids = torch.full((len(token_lists), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(token_lists), width), dtype=torch.long)
        for row, toks in enumerate(token_lists):
            ids[row, width - len(toks):] = torch.tensor(toks)
            mask[row, width - len(toks):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        dev = self.llm.device
        return ids.to(dev), mask.to(dev), positions.to(dev)

    def last_hidden(self, texts: Sequence[str]):
        """Input of the output layer at each text's last position, float32, in the order of `texts`.

        Batches are length-sorted (less padding); `logits_to_keep=1` projects only the last position.
        """
        import torch

        head = self.llm.model.get_output_embeddings()
        tokens = [encode(self.tokenizer, t) for t in texts]
        order = sorted(range(len(tokens)), key=lambda i: len(tokens[i]))
        captured: list = []
        # The hook sits on the shared model: hold the lock while it exists, or a concurrent caller's forward
        # pass (another web session) would append its rows to this caller's `captured`.
        with self.llm.using(self.adapter):
            hook = head.register_forward_hook(lambda _m, args, _out: captured.append(args[0][:, -1, :].float()))
            try:
                with torch.inference_mode():
                    for start in range(0, len(order), self.batch_size):
                        batch = [tokens[i] for i in order[start:start + self.batch_size]]
                        ids, mask, positions = self._batch(batch)
                        self.llm.model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1)
            finally:
                hook.remove()
        hidden = torch.cat(captured)
        out = torch.empty_like(hidden)
        out[torch.tensor(order)] = hidden
        return out

    def _project(self, hidden, token_ids: Sequence[int] | None = None):
        """Output-layer logits in float32 (only the requested rows): bf16 logits sit on a 0.125 grid near
        |20|, which would tie candidates."""
        import torch

        head = self.llm.model.get_output_embeddings()
        rows = slice(None) if token_ids is None else list(token_ids)
        logits = hidden @ head.weight[rows].float().T
        if getattr(head, "bias", None) is not None:
            logits = logits + head.bias[rows].float()
        cap = getattr(self.llm.model.config, "final_logit_softcapping", None)
        return torch.tanh(logits / cap) * cap if cap else logits

    def label_logprobs(self, prompts: Sequence[RerankPrompt]) -> list[np.ndarray]:
        """Label-token logits (= log-probs up to a per-prompt constant; the reranker normalises over labels)."""
        import torch

        hidden = self.last_hidden([p.text for p in prompts])
        with torch.inference_mode():
            return [self._project(hidden[i:i + 1], p.label_token_ids)[0].cpu().numpy().astype(np.float64)
                    for i, p in enumerate(prompts)]

    def next_token_logprobs(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), vocab) log-softmax of the next token after each text (pointwise scoring, benchmarks)."""
        import torch

        with torch.inference_mode():
            return torch.log_softmax(self._project(self.last_hidden(texts)), dim=-1).cpu().numpy()

    def generate(self, texts: Sequence[str], max_new_tokens: int) -> list[tuple[str, bool]]:
        """Batched greedy generation (left padding), `batch_size` texts per call."""
        import torch

        tokens = [encode(self.tokenizer, t) for t in texts]
        eos = self.tokenizer.eos_token_id
        results: list[tuple[str, bool]] = []
        with self.llm.using(self.adapter), torch.inference_mode():
            for start in range(0, len(tokens), self.batch_size):
                ids, mask, _ = self._batch(tokens[start:start + self.batch_size])
                out = self.llm.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                              do_sample=False, pad_token_id=self.tokenizer.pad_token_id)
                for row in out[:, ids.shape[1]:].tolist():
                    finished = eos in row
                    row = row[:row.index(eos)] if finished else row
                    results.append((self.tokenizer.decode(row, skip_special_tokens=True).strip(), finished))
        return results
