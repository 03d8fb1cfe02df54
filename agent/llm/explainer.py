"""Grounded one-sentence explanations for the final items: ONE batched greedy generation, then a post-check.

Each explanation is generated from the item's catalog facts and the user's stated preferences only. The grounding
check (`agent.llm.grounding`) rejects any genre, year / decade or catalog title that is not true of the item (or
asked for by the user); rejected, empty or over-budget text falls back to the template explanation written from the
pick's evidence (agent/llm/evidence_text.py, the same one the conversation uses). `Explanation.source` records
which one the user sees.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agent.llm.evidence_text import ExplanationWriter, item_evidence
from agent.llm.grounding import GroundingChecker, canonical_genre
from agent.llm.prompting import NONE_TEXT, clean, prefill, render_chat
from retrieval.catalog.schema import Catalog, Item
from retrieval.evidence import Evidence

NO_SENTENCE = "no usable sentence (empty, an echo of the prompt, or over the length budget)"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# A small model sometimes parrots the prompt's field labels ("Movie: … Genres: …"): not an explanation.
_PROMPT_ECHO = re.compile(r"\b(?:Movie|Genres|About|The viewer (?:liked|asked for)|Why it suits you|Description)\s*:",
                          re.IGNORECASE)


@dataclass(frozen=True)
class Explanation:
    item_id: str
    text: str
    source: str  # "llm" | "template"
    rejected: tuple[str, ...] = ()  # why the model's text was not used (grounding problems, budget)


def _without_repeats(sentences: list[str], similarity: float = 85.0) -> list[str]:
    """Drop sentences that say again what an earlier one said (a small model repeats itself, often reworded:
    "…because it's a movie about a young Jedi…" then "The movie is about a young Jedi…")."""
    from rapidfuzz import fuzz

    kept: list[str] = []
    for sentence in sentences:
        if all(fuzz.token_set_ratio(sentence, earlier) < similarity for earlier in kept):
            kept.append(sentence)
    return kept


def finish_text(text: str, finished: bool, max_chars: int, max_sentences: int) -> str | None:
    """Tidy generated text to at most `max_sentences` whole sentences within `max_chars`; None when nothing
    usable is left (empty, an echo of the prompt's fields, or cut by the token budget mid-sentence)."""
    text = " ".join(text.replace("\u201c", '"').replace("\u201d", '"').split()).strip(' "')
    sentences = _without_repeats([s for s in _SENTENCE_END.split(text) if s])
    if not finished and sentences and not sentences[-1].endswith((".", "!", "?")):
        sentences = sentences[:-1]  # the budget cut the last sentence mid-way
    text = " ".join(sentences[:max_sentences])
    if len(text) < 12 or len(text) > max_chars or _PROMPT_ECHO.search(text):
        return None
    return text if text.endswith((".", "!", "?")) else text + "."


def item_facts(item: Item) -> dict[str, str]:
    return {"label": clean(item.label, 120), "title": clean(item.title, 120),
            "genres": ", ".join(item.genres) or NONE_TEXT, "description": clean(item.description, 400)}


def asked_genres(request: str, checker: GroundingChecker, genres: Iterable[str]) -> list[str]:
    """The catalog `genres` a free-text request names (what a template may say was asked for)."""
    asked = checker.mentions(request).genres if request else frozenset()
    return [g for g in genres if canonical_genre(g) in asked]


class GroundedWriter:
    """A batched generator whose every sentence passes the catalog grounding check (explanations, descriptions)."""

    default_max_new_tokens = 36
    default_max_chars = 280

    def __init__(self, backend, catalog: Catalog, max_new_tokens: int | None = None, max_chars: int | None = None,
                 checker: GroundingChecker | None = None):
        self.backend = backend
        self.catalog = catalog
        self.checker = checker or GroundingChecker(catalog)
        self.max_new_tokens = max_new_tokens or self.default_max_new_tokens
        self.max_chars = max_chars or self.default_max_chars

    def write(self, prompt: str, fields: Sequence[dict[str, str]], max_sentences: int) -> list[str | None]:
        """One batched generation of prompts/PROMPT.txt per field set; the prompt's prefill ("You might enjoy
        X because") starts each text. None where `finish_text` finds no usable sentence."""
        texts = [render_chat(self.backend.tokenizer, prompt, **f) for f in fields]
        starts = [prefill(prompt, **f) for f in fields]
        outputs = self.backend.generate(texts, self.max_new_tokens)
        return [finish_text(f"{start} {raw}".strip(), finished, self.max_chars, max_sentences)
                for start, (raw, finished) in zip(starts, outputs)]


class Explainer(GroundedWriter):

    @classmethod
    def from_config(cls, llm_cfg, home, catalog: Catalog, adapter: str | None = None) -> "Explainer":
        from agent.llm.backend import LocalBackend
        from agent.llm.loading import load_model

        if llm_cfg.endpoint:
            from agent.llm.remote import RemoteBackend

            backend = RemoteBackend.from_config(llm_cfg, home)
        else:
            backend = LocalBackend(load_model(llm_cfg, home, adapter=adapter), batch_size=llm_cfg.batch_size)
        return cls(backend, catalog, llm_cfg.explain_max_new_tokens, llm_cfg.explain_max_chars)

    def fields(self, item: Item, request: str = "", liked: Sequence[Item] = ()) -> dict[str, str]:
        liked_text = "; ".join(clean(it.label, 80) for it in list(liked)[-5:]) or NONE_TEXT
        return {**item_facts(item), "request": clean(request, 200) or NONE_TEXT, "liked": liked_text}

    def prompt(self, item: Item, request: str = "", liked: Sequence[Item] = ()) -> str:
        return render_chat(self.backend.tokenizer, "explain", **self.fields(item, request, liked))

    def explain(self, items: Sequence[Item], request: str = "", liked: Sequence[Item] = (),
                evidence: Sequence[Evidence] | None = None) -> list[Explanation]:
        """One explanation per item, in order; a single batched generation for all of them. `evidence` (one per
        item) words the template fallback; without it the fallback uses the item's own facts and the request."""
        if not items:
            return []
        written = self.write("explain", [self.fields(it, request, liked) for it in items], max_sentences=2)
        if evidence is None:
            asked = asked_genres(request, self.checker, self.catalog.genres())
            evidence = [item_evidence(it, asked) for it in items]
        templates = ExplanationWriter().write(list(zip(items, evidence)))
        results = []
        for item, text, template in zip(items, written, templates):
            problems: tuple[str, ...] = (NO_SENTENCE,) if text is None else \
                self.checker.check(text, item, allowed_text=request, allowed_items=liked).problems
            if text is not None and not problems:
                results.append(Explanation(item.item_id, text, "llm"))
            else:
                results.append(Explanation(item.item_id, template, "template", problems))
        return results
