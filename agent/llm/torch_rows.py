"""The rows of a greedy generation in a transformers cache, as agent/llm/lookahead.py `look_ahead` drives them
(its llama.cpp counterpart: agent/llm/llamacpp.py `LlamaRows`)."""
from __future__ import annotations

from agent.llm.loading import LoadedModel


class TorchRows:
    """The rows of a greedy generation in a transformers cache, as `look_ahead` drives them. Proposals a row did
    not take, and positions it stepped back from, stay in the cache, masked out."""

    def __init__(self, llm: LoadedModel, past, mask, next_pos):
        self.llm, self.past, self.mask, self.next_pos = llm, past, mask, next_pos
        self.width = 0

    def feed(self, tokens: list[list[int]]):
        import torch

        n, device = len(tokens), self.llm.device
        self.width = width = max(len(t) for t in tokens)
        ids = torch.full((n, width), self.llm.tokenizer.pad_token_id, dtype=torch.long)
        for j, toks in enumerate(tokens):
            ids[j, :len(toks)] = torch.tensor(toks, dtype=torch.long)
        out = self.llm.model(input_ids=ids.to(device),
                             attention_mask=torch.cat([self.mask, torch.ones((n, width), dtype=torch.long)],
                                                      dim=1).to(device),
                             position_ids=(self.next_pos[:, None] + torch.arange(width)[None, :]).to(device),
                             cache=self.past, use_cache=True)
        self.past = out.past_key_values
        return out.logits.float()

    def accept(self, kept: list[int]) -> None:
        import torch

        seen = torch.zeros((len(kept), self.width), dtype=torch.long)
        for j, count in enumerate(kept):
            seen[j, :count] = 1
        self.mask = torch.cat([self.mask, seen], dim=1)
        self.next_pos = self.next_pos + torch.tensor(kept)

    def rewind(self, j: int, count: int) -> None:
        """Row j gives back its last `count` cache positions (masked out; the next tokens take their positions)."""
        held = self.mask[j].nonzero().flatten()
        self.mask[j, held[len(held) - count:]] = 0
        self.next_pos = self.next_pos.clone()
        self.next_pos[j] -= count

    def select(self, going: list[int]) -> None:
        import torch

        index = torch.tensor(going)
        self.past.batch_select_indices(index.to(self.llm.device))
        self.mask, self.next_pos = self.mask[index], self.next_pos[index]
