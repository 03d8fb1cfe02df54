"""The listwise scorer (LlamaRec-style verbalizer): one prompt lists the candidates behind single-token labels
("A".."T"); a candidate's score is the log-softmax over the label tokens read right after the prompt.

Position bias is controlled two ways: the label-position prior of a content-free prompt (same template, every
field a placeholder) is subtracted (`calibrate`), and scores may be averaged over k candidate permutations
(`permutations`). In training the candidates get a fresh seeded order every epoch, so the answer's label is
uniform over positions: the model can only lower its loss by reading the titles.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import prompts
from agent.llm.prompting import LabelSet, RerankPrompt, UserSummary, clean, encode, render_chat, user_fields
from agent.llm.scorers import Scorer, log_softmax, register_scorer

PROMPT = "rerank"


def build_rerank_prompt(tokenizer, user: UserSummary, candidates: Sequence[str], labels: LabelSet | None = None,
                        order: Sequence[int] | None = None, history_items: int = 10,
                        name: str = PROMPT) -> RerankPrompt:
    """The listwise prompt: user context + candidates (`Title (year)`) behind single-token labels.

    `order` permutes the candidates (position-bias control, shuffled training data); scores always come back
    mapped to the caller's candidate indices through `RerankPrompt.order`.
    """
    if not candidates:
        raise ValueError("no candidates to rerank")
    labels = labels or LabelSet.for_tokenizer(tokenizer)
    if len(candidates) > len(labels.labels):
        raise ValueError(f"{len(candidates)} candidates but only {len(labels.labels)} labels (max per prompt)")
    order = tuple(range(len(candidates))) if order is None else tuple(order)
    if sorted(order) != list(range(len(candidates))):
        raise ValueError("order must be a permutation of the candidate indices")
    lines = "\n".join(f"{labels.labels[j]}. {clean(candidates[c], 120)}" for j, c in enumerate(order))
    text = render_chat(tokenizer, name, **user_fields(user, history_items), candidates=lines)
    n = len(candidates)
    return RerankPrompt(text=text, labels=labels.labels[:n], label_token_ids=labels.token_ids[:n], order=order,
                        version=prompts.load(name).version)


def content_free_prompt(tokenizer, n: int, labels: LabelSet | None = None, name: str = PROMPT) -> RerankPrompt:
    """Same template, every field a placeholder: its label distribution is the model's position prior."""
    placeholder = "N/A"
    return build_rerank_prompt(tokenizer, UserSummary(liked=(placeholder,), disliked=(placeholder,),
                                                      recent=(placeholder,), request=placeholder),
                               [placeholder] * n, labels=labels, name=name)


def training_example(tokenizer, prompt: RerankPrompt, target: int) -> dict[str, list[int]]:
    """Fine-tuning example: prompt tokens + the target candidate's label token; loss only on that token."""
    ids = encode(tokenizer, prompt.text)
    label_id = prompt.label_token_ids[prompt.targets[target]]
    return {"input_ids": ids + [label_id], "attention_mask": [1] * (len(ids) + 1),
            "labels": [-100] * len(ids) + [label_id]}


@register_scorer("listwise")
class ListwiseScorer(Scorer):
    prompt = PROMPT
    description = "one prompt lists the candidates behind single-token labels; scores = label-token log-probs"
    training_order = ", shuffled afresh each epoch so the answer label is uniform over positions"

    def __init__(self, tokenizer, backend=None, **options: Any):
        super().__init__(tokenizer, backend=backend, **options)
        self.labels = LabelSet.for_tokenizer(tokenizer, self.max_candidates)  # raises LabelError
        self._priors: dict[int, np.ndarray] = {}

    # -- prompts ---------------------------------------------------------------------------------------------
    def orders(self, n: int) -> list[tuple[int, ...]]:
        """Identity, reversed, then seeded shuffles: k permutations of n candidates."""
        out = [tuple(range(n))]
        if self.permutations > 1:
            out.append(tuple(reversed(range(n))))
        rng = np.random.default_rng(self.seed + n)
        while len(out) < self.permutations:
            out.append(tuple(int(i) for i in rng.permutation(n)))
        return out

    def prompts_for(self, user: UserSummary, titles: Sequence[str]) -> list[RerankPrompt]:
        return [build_rerank_prompt(self.tokenizer, user, titles, labels=self.labels, order=order,
                                    history_items=self.history_items) for order in self.orders(len(titles))]

    def prior(self, n: int) -> np.ndarray:
        """Label-position prior: restricted log-softmax of the content-free prompt (cached per list length)."""
        if n not in self._priors:
            cf = content_free_prompt(self.tokenizer, n, labels=self.labels)
            self._priors[n] = log_softmax(self._backend().label_logprobs([cf])[0])
        return self._priors[n]

    # -- scoring ---------------------------------------------------------------------------------------------
    def scores(self, users: Sequence[UserSummary], candidate_titles: Sequence[Sequence[str]]) -> list[np.ndarray]:
        return self._scores(users, candidate_titles, self.calibrate)

    def validation_scores(self, users, candidate_titles):
        """Raw label scores, and the same pass with the content-free prior subtracted."""
        raw = self._scores(users, candidate_titles, calibrate=False)
        return raw, [log_softmax(lp - self.prior(len(lp))) for lp in raw]

    def _scores(self, users, candidate_titles, calibrate: bool) -> list[np.ndarray]:
        batch: list[RerankPrompt] = []
        spans = []
        for user, titles in zip(users, candidate_titles):
            start = len(batch)
            batch.extend(self.prompts_for(user, titles))
            spans.append((start, len(batch)))
        raw = self._backend().label_logprobs(batch)
        results = []
        for (start, stop), titles in zip(spans, candidate_titles):
            n = len(titles)
            total = np.zeros(n)
            for prompt, lp in zip(batch[start:stop], raw[start:stop]):
                by_position = log_softmax(lp)
                if calibrate:
                    by_position = by_position - self.prior(n)
                total[list(prompt.order)] += by_position  # position j holds candidate order[j]
            results.append(log_softmax(total / (stop - start)))
        return results

    def describe(self) -> dict[str, Any]:
        return {"scorer": self.name, "permutations": self.permutations, "calibrate": self.calibrate,
                "labels": "".join(self.labels.labels)}

    # -- fine-tuning ------------------------------------------------------------------------------------------
    def training_example(self, user, titles, target, order):
        prompt = build_rerank_prompt(self.tokenizer, user, titles, labels=self.labels, order=order,
                                     history_items=self.history_items)
        return {**training_example(self.tokenizer, prompt, target), "position": prompt.targets[target],
                "label_token_ids": list(prompt.label_token_ids)}

    def collate(self, examples, pad_id):
        """Left-padded prompt tokens (label token removed), real-token position ids, targets for both losses."""
        import torch

        prompts_ = [ex["input_ids"][:-1] for ex in examples]
        width = max(len(p) for p in prompts_)
        ids = torch.full((len(prompts_), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts_), width), dtype=torch.long)
        for row, toks in enumerate(prompts_):
            ids[row, width - len(toks):] = torch.tensor(toks)
            mask[row, width - len(toks):] = 1
        return {"input_ids": ids, "attention_mask": mask, "position_ids": (mask.cumsum(-1) - 1).clamp(min=0),
                "label_token": torch.tensor([ex["labels"][-1] for ex in examples]),
                "label_token_ids": torch.tensor([ex["label_token_ids"] for ex in examples]),
                "position": torch.tensor([ex["position"] for ex in examples])}

    def _next_token_logits(self, model, batch):
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                     position_ids=batch["position_ids"], logits_to_keep=1).logits[:, -1].float()

    def candidate_logits(self, model, batch):
        return self._next_token_logits(model, batch).gather(1, batch["label_token_ids"])

    def loss(self, model, batch, kind: str = "labels"):
        """`kind = "labels"`: cross-entropy of the softmax restricted to the prompt's label tokens (exactly the
        distribution the reranker uses); `"token"`: the plain next-token cross-entropy over the whole vocabulary
        on the label token (the classic SFT loss, restricted to that token)."""
        if kind == "labels":
            return self.candidate_loss(self.candidate_logits(model, batch), batch)
        import torch
        import torch.nn.functional as F

        logits = self._next_token_logits(model, batch)
        loss = F.cross_entropy(logits, batch["label_token"])
        with torch.no_grad():
            label_logits = logits.gather(1, batch["label_token_ids"])
            accuracy = (label_logits.argmax(-1) == batch["position"]).float().mean()
        return loss, accuracy

    def adapter_meta(self) -> dict[str, Any]:
        return {**super().adapter_meta(), "labels": "".join(self.labels.labels)}
