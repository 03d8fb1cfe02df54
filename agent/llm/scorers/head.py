"""The head scorer: a small trained head over the LLM's representation of each title (two towers, one LLM).

Every title (candidates and the user's recent / liked films) is read by the LLM on its own, through
`prompts/item_embedding.txt`; its embedding is the mean of the last hidden states over the prompt's tokens. The
user is the mean of their titles' embeddings; a candidate's score is a low-rank bilinear form of user and
candidate plus a per-candidate term (`ScoreHead`), and the list's scores are their log-softmax.

Why this shape: a title's embedding does not depend on the user, so it is computed once per title (serving keeps
them; training caches the frozen layers below the LoRA once per title), which makes training on every train
position affordable on a CPU, where a full prompt per (user, 20 candidates) is not. The LoRA (top layers) and the
head are trained together; the head is saved next to the adapter (`score_head.safetensors`).
Scores do not depend on the candidates' order, so this scorer needs no calibration and can distil a teacher.
Disliked titles and the request are not read (the two-tower user is what they watched and liked).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agent.llm.prompting import UserSummary, clean, encode
from agent.llm.scorers import Scorer, log_softmax, register_scorer

PROMPT = "item_embedding"
HEAD_FILE = "score_head.safetensors"
RANK = 64


def head_module(hidden: int, rank: int = RANK):
    """The trainable head: score(u, c) = ⟨U·norm(u), V·norm(c)⟩ + w·norm(c) + b."""
    import torch
    from torch import nn

    class ScoreHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.user = nn.Linear(hidden, rank, bias=False)
            self.item = nn.Linear(hidden, rank, bias=False)
            self.prior = nn.Linear(hidden, 1)

        def forward(self, user, items):  # (B, h), (B, n, h) → (B, n)
            norm = lambda x: torch.nn.functional.layer_norm(x, x.shape[-1:])  # noqa: E731
            u, c = norm(user), norm(items)
            return (self.user(u)[:, None, :] * self.item(c)).sum(-1) / rank ** 0.5 + self.prior(c)[..., 0]

    return ScoreHead()


def title_tokens(tokenizer, title: str) -> tuple[int, ...]:
    """The tokens of one title's embedding prompt, memoised per tokenizer (training re-reads each title often)."""
    memo = _TOKENS.setdefault(id(tokenizer), {})
    if title not in memo:
        import prompts

        memo[title] = tuple(encode(tokenizer, prompts.load(PROMPT).format(title=clean(title, 120))))
    return memo[title]


_TOKENS: dict[int, dict[str, tuple[int, ...]]] = {}


def pad_titles(token_lists: Sequence[Sequence[int]], pad_id: int):
    """Right-padded ids (U, L), positions, a boolean causal+padding mask (U, 1, L, L) and the real-token mask."""
    import torch

    width = max(len(t) for t in token_lists)
    ids = torch.full((len(token_lists), width), pad_id, dtype=torch.long)
    real = torch.zeros((len(token_lists), width), dtype=torch.bool)
    for row, toks in enumerate(token_lists):
        ids[row, :len(toks)] = torch.tensor(list(toks))
        real[row, :len(toks)] = True
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    mask = (causal[None] & real[:, None, :]) | torch.eye(width, dtype=torch.bool)[None]
    positions = torch.arange(width)[None].expand(len(token_lists), -1).contiguous()
    return {"title_ids": ids, "title_positions": positions, "title_mask": mask[:, None], "title_real": real}


def decoder_of(model):
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder()


def run_layers(model, batch: dict, hidden=None, start: int = 0, stop: int | None = None):
    """The decoder's layers [start, stop) over padded titles (from the embeddings when `hidden` is None)."""
    net = decoder_of(model)
    if hidden is None:
        hidden = net.embed_tokens(batch["title_ids"])
    rotary = net.rotary_emb(hidden, position_ids=batch["title_positions"])
    for layer in net.layers[start:stop]:
        hidden = layer(hidden, attention_mask=batch["title_mask"], position_ids=batch["title_positions"],
                       position_embeddings=rotary)
    return hidden


def pooled(model, batch: dict, hidden):
    """Mean over each title's real tokens of the final-norm states, float32 (U, h)."""
    states = decoder_of(model).norm(hidden).float()
    real = batch["title_real"][..., None].float()
    return (states * real).sum(1) / real.sum(1).clamp_min(1)


@register_scorer("head")
class HeadScorer(Scorer):
    prompt = PROMPT
    description = ("each title embedded alone by the LLM (mean last hidden state); user = mean of their titles; "
                   "score = a trained low-rank bilinear head, softmax over the candidates")
    training_order = "; head scores do not depend on the candidates' order"
    supports_distillation = True
    extra_files = (HEAD_FILE,)
    caches_own_frozen_layers = True

    def __init__(self, tokenizer, backend=None, **options: Any):
        super().__init__(tokenizer, backend=backend, **options)
        self.head = None
        # title → embedding: the model's memo (`LoadedModel.extras["cache"]`, kept as long as its weights are, so
        # every reranker over one loaded adapter shares it), else this scorer's own
        self._embeddings: dict[str, np.ndarray] = {}
        self._bottom: dict[int, Any] = {}  # title hash → frozen states below `frozen_start` (training)
        self._final: dict[int, Any] = {}  # title hash → embedding while the LLM is frozen (training)
        if backend is not None:
            memo = backend.llm.extras.get("cache")
            if memo is not None:
                self._embeddings = memo.setdefault((PROMPT, "embeddings"), {})
            trained = backend.llm.extras.get("score_head")  # fine-tuning's validation: the head being trained
            self.head = trained if trained is not None else self._load_head(backend.llm)

    def check_backend(self, backend) -> None:
        if not hasattr(backend, "llm"):
            raise ValueError("the head scorer needs the model in this process (it reads hidden states); with an "
                             "OpenAI-compatible endpoint set [llm] scorer = \"listwise\"")

    @staticmethod
    def _load_head(llm):
        path = Path(llm.adapter) / HEAD_FILE if llm.adapter is not None else None
        if path is None or not path.is_file():
            raise ValueError(f"the head scorer needs a trained head ({HEAD_FILE}) in its adapter folder; "
                             f"adapter: {llm.adapter}. Train one with `marquee finetune --scorer head`.")
        from safetensors.torch import load_file

        state = load_file(str(path))
        rank, hidden = state["user.weight"].shape
        head = head_module(hidden, rank)
        head.load_state_dict(state)
        return head.to(llm.device).eval()

    # -- trainable parts ---------------------------------------------------------------------------------
    def init_trainable(self, model, seed: int = 0) -> list:
        """A fresh head (seeded) for training; returned so the trainer optimises and checkpoints it."""
        import torch

        torch.manual_seed(seed)
        self.head = head_module(decoder_of(model).config.hidden_size)
        return [self.head]

    def save_trainable(self, folder: Path) -> None:
        from safetensors.torch import save_file

        save_file({k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()},
                  str(Path(folder) / HEAD_FILE))

    def load_trainable(self, folder: Path) -> None:
        from safetensors.torch import load_file

        device = next(self.head.parameters()).device
        self.head.load_state_dict({k: v.to(device) for k, v in load_file(str(Path(folder) / HEAD_FILE)).items()})

    # -- inference -------------------------------------------------------------------------------------------
    def _titles_of(self, user: UserSummary) -> list[str]:
        return list(user.recent[-self.history_items:]) + list(user.liked[-self.history_items:]) \
            if self.history_items else []

    def embed(self, titles: Sequence[str]) -> dict[str, np.ndarray]:
        """Embeddings of `titles` through the whole model (cached per title), batched `backend.batch_size` × 8."""
        import torch

        backend = self._backend()
        todo = sorted({t for t in titles if t not in self._embeddings})
        size = backend.batch_size * 8
        with backend.llm.lock, torch.inference_mode():
            for at in range(0, len(todo), size):
                chunk = todo[at:at + size]
                batch = {k: v.to(backend.llm.device) for k, v in pad_titles(
                    [title_tokens(self.tokenizer, t) for t in chunk], backend.tokenizer.pad_token_id).items()}
                vectors = pooled(backend.llm.model, batch, run_layers(backend.llm.model, batch)).cpu().numpy()
                self._embeddings.update(zip(chunk, vectors))
        return self._embeddings

    def scores(self, users: Sequence[UserSummary], candidate_titles: Sequence[Sequence[str]]) -> list[np.ndarray]:
        import torch

        table = self.embed([t for u in users for t in self._titles_of(u)] + [t for c in candidate_titles for t in c])
        hidden = next(iter(table.values())).shape[0] if table else 1
        out = []
        device = next(self.head.parameters()).device
        with torch.inference_mode():
            for user, titles in zip(users, candidate_titles):
                own = [table[t] for t in self._titles_of(user)]
                u = np.mean(own, axis=0) if own else np.zeros(hidden, dtype=np.float32)
                c = np.stack([table[t] for t in titles])
                s = self.head(torch.from_numpy(u[None]).float().to(device),
                              torch.from_numpy(c[None]).float().to(device))[0]
                out.append(log_softmax(s.float().cpu().numpy()))
        return out

    # -- fine-tuning ------------------------------------------------------------------------------------------
    def training_example(self, user, titles, target, order):
        own = self._titles_of(user)
        return {"titles": tuple(titles), "own": tuple(own), "position": target,
                "input_ids": tuple(t for title in titles for t in title_tokens(self.tokenizer, title))}

    def collate(self, examples, pad_id):
        """The batch's distinct titles once (padded), and per example the indices of its candidates and titles."""
        import torch

        index: dict[str, int] = {}
        for ex in examples:
            for t in (*ex["titles"], *ex["own"]):
                index.setdefault(t, len(index))
        titles = list(index)
        n = max(len(ex["titles"]) for ex in examples)
        h = max(1, max(len(ex["own"]) for ex in examples))
        cand = torch.zeros((len(examples), n), dtype=torch.long)
        score_mask = torch.zeros((len(examples), n), dtype=torch.bool)
        own = torch.zeros((len(examples), h), dtype=torch.long)
        own_mask = torch.zeros((len(examples), h), dtype=torch.bool)
        for row, ex in enumerate(examples):
            cand[row, :len(ex["titles"])] = torch.tensor([index[t] for t in ex["titles"]])
            score_mask[row, :len(ex["titles"])] = True
            if ex["own"]:
                own[row, :len(ex["own"])] = torch.tensor([index[t] for t in ex["own"]])
                own_mask[row, :len(ex["own"])] = True
        batch = {**pad_titles([title_tokens(self.tokenizer, t) for t in titles], pad_id),
                 "candidates": cand, "score_mask": score_mask, "own": own, "own_mask": own_mask,
                 "position": torch.tensor([ex["position"] for ex in examples])}
        batch["title_key"] = torch.tensor([hash(t) & 0x7FFFFFFFFFFF for t in titles], dtype=torch.long)
        if "teacher" in examples[0]:
            teacher = torch.zeros((len(examples), n), dtype=torch.float32)
            for row, ex in enumerate(examples):
                teacher[row, :len(ex["teacher"])] = torch.tensor(ex["teacher"], dtype=torch.float32)
            batch["teacher"] = teacher
        return batch

    def _title_states(self, model, batch):
        """Title embeddings of the batch, differentiable through the LoRA layers. With `frozen_start` > 0 the
        layers below it (frozen) are computed once per title and kept (`_bottom`), keyed by title hash."""
        import torch

        if self.llm_frozen:  # only the head trains: each title's embedding once, without gradients
            keys = batch["title_key"].tolist()
            missing = [i for i, k in enumerate(keys) if k not in self._final]
            if missing:
                with torch.no_grad():
                    sub = {k: batch[k][missing] for k in ("title_ids", "title_positions", "title_mask", "title_real")}
                    vectors = pooled(model, sub, run_layers(model, sub))
                for j, i in enumerate(missing):
                    self._final[keys[i]] = vectors[j].detach()
            return torch.stack([self._final[k] for k in keys])
        self._final.clear()  # the LLM trains from here on: those embeddings are stale
        if not self.frozen_start:
            return pooled(model, batch, run_layers(model, batch))
        keys = batch["title_key"].tolist()
        missing = [i for i, k in enumerate(keys) if k not in self._bottom]
        if missing:
            with torch.no_grad():
                sub = {k: batch[k][missing] for k in ("title_ids", "title_positions", "title_mask")}
                states = run_layers(model, sub, stop=self.frozen_start)
            lengths = batch["title_real"].sum(1).tolist()
            for j, i in enumerate(missing):
                self._bottom[keys[i]] = states[j, :lengths[i]].detach().clone()
        width = batch["title_ids"].shape[1]
        hidden = torch.stack([self._bottom[k][:width] if self._bottom[k].shape[0] >= width else
                              torch.nn.functional.pad(self._bottom[k], (0, 0, 0, width - self._bottom[k].shape[0]))
                              for k in keys])
        return pooled(model, batch, run_layers(model, batch, hidden=hidden, start=self.frozen_start))

    def candidate_logits(self, model, batch):
        table = self._title_states(model, batch)  # (U, h)
        own = table[batch["own"]] * batch["own_mask"][..., None]
        user = own.sum(1) / batch["own_mask"].sum(1, keepdim=True).clamp_min(1)
        return self.head(user, table[batch["candidates"]]).float()
