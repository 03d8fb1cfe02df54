"""The segment scorer: pointwise Yes/No scoring of every candidate in ONE forward pass (prefix-shared segments).

TALLRec-style pointwise scoring asks "will this user watch <candidate>? Yes/No" once per candidate: 20
candidates cost 20 forward passes over the same user context. Here the user context (the prefix) is encoded
once and the 20 candidate segments follow it in the same sequence, each with a block attention mask that lets it
see the prefix and itself only, and position ids that restart right after the prefix. Every segment is therefore
computed exactly as if it were the only candidate (the same numbers as 20 separate prompts), yet the pass costs
about as much as one listwise prompt.

A candidate's score is logit("Yes") − logit("No") at its segment's last token; the list's scores are their
log-softmax over the candidates. Scores do not depend on the order of the candidates, so this scorer needs no
label-position calibration and no permutation averaging, and a training example is the same in every epoch.
It needs the model in this process (block attention masks), not an OpenAI-compatible endpoint.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agent.llm.prompting import UserSummary, clean, render_chat, user_fields, uses_chat_template
from agent.llm.scorers import Scorer, log_softmax, register_scorer

PROMPT = "rerank_segments"
_SLOT = "\u2063CANDIDATE\u2063"  # a marker no title contains: the prompt is split around it
PAD_SEGMENT, PREFIX_SEGMENT = -2, -1


@dataclass(frozen=True)
class SegmentPrompt:
    """One user's packed sequence: prefix tokens, then one segment per candidate (in the caller's order)."""

    input_ids: tuple[int, ...]
    position_ids: tuple[int, ...]
    segment_ids: tuple[int, ...]  # PREFIX_SEGMENT for the prefix, k for candidate k
    score_at: tuple[int, ...]  # index of each candidate segment's last token (where Yes/No is read)

    def __len__(self) -> int:
        return len(self.input_ids)


def answer_tokens(tokenizer) -> tuple[int, int]:
    """The single-token "Yes" and "No" the answer starts with (as the tokenizer splits them after a newline)."""
    ids = []
    for word in ("Yes", "No"):
        alone = tokenizer.encode(word, add_special_tokens=False)
        if len(alone) != 1:
            raise ValueError(f"{word!r} is not one token for {type(tokenizer).__name__}; the segment scorer needs it")
        ids.append(alone[0])
    return ids[0], ids[1]


def split_template(tokenizer, user: UserSummary, history_items: int = 10, name: str = PROMPT) -> tuple[str, str]:
    """(prefix text, suffix text): the prompt before and after the candidate slot."""
    text = render_chat(tokenizer, name, **user_fields(user, history_items), candidate=_SLOT)
    prefix, found, suffix = text.partition(_SLOT)
    if not found:
        raise ValueError(f"prompts/{name}.txt must contain the {{candidate}} field")
    return prefix, suffix


def build_segment_prompt(tokenizer, user: UserSummary, candidates: Sequence[str], history_items: int = 10,
                         name: str = PROMPT) -> SegmentPrompt:
    if not candidates:
        raise ValueError("no candidates to rerank")
    prefix_text, suffix_text = split_template(tokenizer, user, history_items, name)
    prefix = tokenizer(prefix_text, add_special_tokens=not uses_chat_template(tokenizer))["input_ids"]
    ids, positions, segments, score_at = list(prefix), list(range(len(prefix))), [PREFIX_SEGMENT] * len(prefix), []
    for k, title in enumerate(candidates):
        seg = tokenizer.encode(clean(title, 120) + suffix_text, add_special_tokens=False)
        ids += seg
        positions += range(len(prefix), len(prefix) + len(seg))
        segments += [k] * len(seg)
        score_at.append(len(ids) - 1)
    return SegmentPrompt(tuple(ids), tuple(positions), tuple(segments), tuple(score_at))


def collate(prompts: Sequence[SegmentPrompt], pad_id: int, device=None):
    """Right-padded ids/positions, a boolean block mask (B, 1, L, L) and the score positions (B, n)."""
    import torch

    width = max(len(p) for p in prompts)
    n = max(len(p.score_at) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    pos = torch.zeros((len(prompts), width), dtype=torch.long)
    seg = torch.full((len(prompts), width), PAD_SEGMENT, dtype=torch.long)
    at = torch.zeros((len(prompts), n), dtype=torch.long)
    real = torch.zeros((len(prompts), n), dtype=torch.bool)  # rows with fewer candidates are padded
    for row, p in enumerate(prompts):
        ids[row, :len(p)] = torch.tensor(p.input_ids)
        pos[row, :len(p)] = torch.tensor(p.position_ids)
        seg[row, :len(p)] = torch.tensor(p.segment_ids)
        at[row, :len(p.score_at)] = torch.tensor(p.score_at)
        real[row, :len(p.score_at)] = True
    q, k = seg[:, :, None], seg[:, None, :]
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    visible = (k == PREFIX_SEGMENT) | (k == q)
    mask = causal & visible & (q != PAD_SEGMENT)
    mask |= torch.eye(width, dtype=torch.bool)  # padding rows see themselves (no all-masked softmax rows)
    tensors = {"input_ids": ids, "position_ids": pos, "attention_mask": mask[:, None], "score_at": at,
               "score_mask": real}
    return {key: v.to(device) for key, v in tensors.items()} if device is not None else tensors


def decoder_of(model):
    """The transformer stack under the LM head (through a peft wrapper, whose LoRA layers live inside it)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder()


def segment_logits(model, batch: dict, yes_no: tuple[int, int]):
    """(B, n) float32 logit(Yes) − logit(No) at each segment's end; differentiable (training uses it)."""
    import torch

    hidden = decoder_of(model)(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                               position_ids=batch["position_ids"], use_cache=False).last_hidden_state
    picked = torch.gather(hidden, 1, batch["score_at"][..., None].expand(-1, -1, hidden.shape[-1]))
    head = model.get_output_embeddings()
    direction = (head.weight[yes_no[0]] - head.weight[yes_no[1]]).float()
    return picked.float() @ direction


def score_segments(backend, prompts: Sequence[SegmentPrompt]) -> list[np.ndarray]:
    """Per prompt, Yes−No logits of its candidates, batched `backend.batch_size` users per pass."""
    import torch

    llm = backend.llm
    yes_no = answer_tokens(backend.tokenizer)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[np.ndarray | None] = [None] * len(prompts)
    with llm.using(getattr(backend, "adapter", None)), torch.inference_mode():
        for start in range(0, len(order), backend.batch_size):
            rows = order[start:start + backend.batch_size]
            batch = collate([prompts[i] for i in rows], backend.tokenizer.pad_token_id, llm.device)
            logits = segment_logits(llm.model, batch, yes_no).cpu().numpy().astype(np.float64)
            for r, i in enumerate(rows):
                out[i] = logits[r, :len(prompts[i].score_at)]
    return out  # type: ignore[return-value]


@register_scorer("segments")
class SegmentScorer(Scorer):
    prompt = PROMPT
    description = ("the user context once, then each candidate as its own masked segment; scores = Yes−No "
                   "logits, softmax over the candidates in training")
    training_order = "; segment scores do not depend on the candidates' order"
    supports_frozen_cache = True
    supports_distillation = True  # candidates stay in the teacher's order

    def check_backend(self, backend) -> None:
        if not hasattr(backend, "llm"):
            raise ValueError("the segments scorer needs the model in this process (it builds block attention "
                             "masks); with an OpenAI-compatible endpoint set [llm] scorer = \"listwise\"")

    def scores(self, users: Sequence[UserSummary], candidate_titles: Sequence[Sequence[str]]) -> list[np.ndarray]:
        prompts = [build_segment_prompt(self.tokenizer, u, t, self.history_items)
                   for u, t in zip(users, candidate_titles)]
        return [log_softmax(s) for s in score_segments(self._backend(), prompts)]

    # -- fine-tuning ------------------------------------------------------------------------------------------
    def training_example(self, user, titles, target, order):
        """The packed prompt as inference builds it; `order` is ignored (positions restart after the prefix)."""
        prompt = build_segment_prompt(self.tokenizer, user, titles, self.history_items)
        return {"segments": prompt, "input_ids": prompt.input_ids, "position": target,
                "yes_no": answer_tokens(self.tokenizer)}

    def collate(self, examples, pad_id):
        """One packed, block-masked batch; cached frozen-layer states (finetune.training.frozen_cache), when the
        examples carry them, are right-padded like the ids."""
        import torch

        batch = {**collate([ex["segments"] for ex in examples], pad_id),
                 "position": torch.tensor([ex["position"] for ex in examples]),
                 "yes_no": torch.tensor(examples[0]["yes_no"])}
        if "teacher" in examples[0]:  # the teacher's scores of the candidates (padded lists: masked by score_mask)
            teacher = torch.zeros(batch["score_mask"].shape, dtype=torch.float32)
            for row, ex in enumerate(examples):
                teacher[row, :len(ex["teacher"])] = torch.tensor(ex["teacher"], dtype=torch.float32)
            batch["teacher"] = teacher
        if "hidden" in examples[0]:
            hidden = torch.zeros((len(examples), batch["input_ids"].shape[1], examples[0]["hidden"].shape[-1]),
                                 dtype=examples[0]["hidden"].dtype)
            for row, ex in enumerate(examples):
                hidden[row, :ex["hidden"].shape[0]] = ex["hidden"]
            batch.update(hidden=hidden, start=torch.tensor(examples[0]["start"]))
        return batch

    def candidate_logits(self, model, batch):
        return segment_logits(model, batch, tuple(batch["yes_no"].tolist()))
