"""Prompt rendering shared by inference AND fine-tuning (one renderer, so training matches serving exactly).

Each LLM scorer (`agent.llm.scorers`) builds its reranking prompt from these parts: the user fields, the chat
wrapping and, for the listwise scorer, candidate labels that are ONE token each for the tokenizer in use
("A".."T" for SmolLM2), read as the next token right after the assistant turn opens (`RerankPrompt`).

Prompt files hold a `<<system>>` and a `<<user>>` section; chat models get them through the tokenizer's chat
template, plain models as text followed by the `<<answer>>` cue. Every prompt ends with a newline, so a label is
always the first token of a line (the tokenizer splits it the same way in the candidate list and the answer).
An optional `<<prefill>>` starts the model's answer ("You might enjoy {title} because"): a small model then
continues a sentence instead of echoing the prompt's fields; the caller keeps the prefill as part of the text.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import prompts

MAX_CANDIDATES = 20
LABEL_ALPHABETS = ("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SECTION = re.compile(r"^<<(system|user|answer|prefill)>>\s*$", re.MULTILINE)
NONE_TEXT = "none"


class LabelError(ValueError):
    """The tokenizer cannot label the candidates with single tokens."""


def clean(text: str, limit: int = 300) -> str:
    """One line of untrusted text (titles, requests): no control characters, collapsed space, bounded length."""
    text = " ".join(_CONTROL.sub(" ", str(text)).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def sections(name: str) -> dict[str, str]:
    """The `<<system>>` / `<<user>>` / `<<answer>>` parts of prompts/NAME.txt."""
    text = prompts.load(name).text
    parts = _SECTION.split(text)
    if len(parts) < 3:
        raise ValueError(f"prompts/{name}.txt needs at least a <<user>> section")
    found = {parts[i]: parts[i + 1].strip("\n") for i in range(1, len(parts) - 1, 2)}
    if "user" not in found:
        raise ValueError(f"prompts/{name}.txt needs a <<user>> section")
    return found


def prefill(name: str, **fields) -> str:
    """The filled-in `<<prefill>>` of prompts/NAME.txt ("" when it has none)."""
    return sections(name).get("prefill", "").format(**fields)


def render_chat(tokenizer, name: str, **fields) -> str:
    """prompts/NAME.txt filled in and wrapped for the model: chat template when it has one, else plain text;
    a `<<prefill>>` is appended last (the answer's start, no newline after it)."""
    parts = {k: v.format(**fields) for k, v in sections(name).items()}
    start = parts.pop("prefill", "")
    if getattr(tokenizer, "chat_template", None):
        messages = ([{"role": "system", "content": parts["system"]}] if parts.get("system") else []) + \
                   [{"role": "user", "content": parts["user"]}]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        text = "\n\n".join(p for p in (parts.get("system"), parts["user"], parts.get("answer", "Answer:")) if p)
    text = text if text.endswith("\n") else text + "\n"
    return text + start


def uses_chat_template(tokenizer) -> bool:
    # Chat templates write their own special tokens into the text; plain prompts let the tokenizer add them.
    return bool(getattr(tokenizer, "chat_template", None))


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=not uses_chat_template(tokenizer))["input_ids"]


@dataclass(frozen=True)
class LabelSet:
    labels: tuple[str, ...]
    token_ids: tuple[int, ...]

    @classmethod
    def for_tokenizer(cls, tokenizer, n: int = MAX_CANDIDATES) -> "LabelSet":
        """The first alphabet whose first n letters are each one token, also at the start of a line."""
        newline = tokenizer.encode("\n", add_special_tokens=False)
        for alphabet in LABEL_ALPHABETS:
            if len(alphabet) < n:
                continue
            ids = []
            for label in alphabet[:n]:
                alone = tokenizer.encode(label, add_special_tokens=False)
                in_line = tokenizer.encode("\n" + label, add_special_tokens=False)
                if len(alone) != 1 or in_line != newline + alone:
                    break
                ids.append(alone[0])
            if len(ids) == n and len(set(ids)) == n:
                return cls(tuple(alphabet[:n]), tuple(ids))
        raise LabelError(f"tokenizer {type(tokenizer).__name__} has no {n} single-token labels among "
                         f"{', '.join(a[:3] + '…' for a in LABEL_ALPHABETS)}; use fewer candidates or another model")


@dataclass(frozen=True)
class UserSummary:
    """What the reranker tells the model about the user (titles as `Title (year)`)."""

    liked: tuple[str, ...] = ()
    disliked: tuple[str, ...] = ()
    recent: tuple[str, ...] = ()
    request: str = ""


@dataclass(frozen=True)
class RerankPrompt:
    text: str
    labels: tuple[str, ...]  # shown labels, in prompt order
    label_token_ids: tuple[int, ...]
    order: tuple[int, ...]  # order[j] = index (into the caller's candidate list) of the candidate shown at label j
    version: str = ""

    @property
    def targets(self) -> dict[int, int]:
        """candidate index → its position j in the prompt (label j): the training target mapping."""
        return {c: j for j, c in enumerate(self.order)}

    def label_of(self, candidate_index: int) -> str:
        return self.labels[self.targets[candidate_index]]


def _titles(values: Sequence[str], limit: int) -> str:
    picked = [clean(v, 80) for v in list(values)[-limit:] if str(v).strip()]
    return "; ".join(picked) if picked else NONE_TEXT


def user_fields(user: UserSummary, history_items: int = 10) -> dict[str, str]:
    """The user part of every reranking prompt (liked, disliked, recent titles; the request)."""
    return {"liked": _titles(user.liked, history_items), "disliked": _titles(user.disliked, history_items),
            "recent": _titles(user.recent, history_items), "request": clean(user.request, 200) or NONE_TEXT}
