"""LLM explanations of a reply's picks, streamed pick by pick, each checked before anyone sees it.

Each pick's prompt (prompts/explain.txt) holds its catalog facts and its evidence as numbered facts, and the request
as quoted data (agent/llm/pick_facts.py). The explainer's LoRA adapter (loaded beside the reranker's on the same
base model, `agent.llm.loading.attach_adapter`) writes the first pick's sentence alone, then the others in one
batch; the rows may not repeat each other's phrases or those of the first (`Sampling.distinct_ngram`, `avoid`).
A sentence is shown only when the claim checker (agent/llm/claims.py) passes it and it shares no 5-word sequence
with an explanation shown before it in the reply (a title counts as one word: "You liked Heat (1995)" may open
two); otherwise the pick gets its evidence template (agent/llm/evidence_text.py), marked `fallback` (another
wording of it, `ExplanationWriter.variants`, where the first would repeat a phrase shown before it).
`Explainer.stream` hands explanations over in pick order, each as soon as it and the ones before it are ready.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from agent.llm.claims import ClaimChecker, bare_title, shared_ngram
from agent.llm.pick_facts import PickContext, explain_fields
from retrieval.catalog.schema import Catalog, Item
from retrieval.evidence import Evidence

NO_SENTENCE = "no usable sentence (empty, an echo of the prompt, or over the length budget)"
DISTINCT_NGRAM = 5  # tokens: rows of one reply may not repeat each other's 5-token sequences while they write
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# A small model sometimes parrots the prompt's field labels ("Film: … Genres: …"): not an explanation.
_PROMPT_ECHO = re.compile(r"\b(?:Movie|Film|Genres|Facts|About|Viewer's request|What the viewer wants|Viewer liked|"
                          r"Catalog description|The viewer (?:liked|asked for)|Why it suits you|Description)\s*:",
                          re.IGNORECASE)


# The lowest probability the model itself may have given a word of a shown sentence. Claim-constrained decoding
# masks the words the evidence does not support; where that leaves the model only words it did not mean, the
# sentence comes out garbled ("16 of its 101 fan fans", "You should rate it is a note of the thriller") yet every
# claim in it checks out. Read off train-split replies with scripts/fluency_floor.py (benchmarks/RESULTS.md).
MIN_TOKEN_LOGPROB = -6.0


@dataclass(frozen=True)
class Draft:
    index: int  # of the field set it was written for
    text: str | None  # finished text, None when nothing usable was written (`finish_text`)
    worst_logprob: float = 0.0  # agent.llm.generation.Generated.worst_logprob (0: not known, a remote endpoint)

    def fluency_problems(self) -> tuple[str, ...]:
        if self.text is None or self.worst_logprob >= MIN_TOKEN_LOGPROB:
            return ()
        return (f"garbled: the constraints forced a word the model itself gave log-probability "
                f"{self.worst_logprob:.1f} (below {MIN_TOKEN_LOGPROB})",)


@dataclass(frozen=True)
class Explanation:
    item_id: str
    text: str  # what the user sees
    source: str  # "llm" | "fallback" (the model's sentence was rejected: `text` is the template)
    rejected: tuple[str, ...] = ()  # why the model's sentence was not shown
    draft: str | None = None  # the model's sentence (shown or not)
    personal: bool = False  # the shown LLM sentence cites evidence personal to the user or the request
    garbled: bool = False  # the draft fell below the fluency floor (`MIN_TOKEN_LOGPROB`)


def _without_repeats(sentences: list[str], similarity: float = 85.0) -> list[str]:
    """Drop sentences that say again what an earlier one said (a small model repeats itself, often reworded)."""
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


class SentenceWriter:
    """Batched generation of one short text per prompt (prompts/explain.txt, prompts/describe.txt) with a local
    model (rows handed back as they finish) or an OpenAI-compatible endpoint (all at once)."""

    default_max_new_tokens = 64
    default_max_chars = 320
    max_sentences = 2
    backtracks = 8  # steps back a constrained row may take from a dead end (agent/llm/lookahead.py)

    def __init__(self, backend, catalog: Catalog, max_new_tokens: int | None = None, max_chars: int | None = None,
                 checker: ClaimChecker | None = None, constrained: bool = True):
        self.backend = backend
        self.catalog = catalog
        self.checker = checker or ClaimChecker(catalog)
        self.constrained = constrained  # claim-constrained decoding (local model only)
        self.max_new_tokens = max_new_tokens or self.default_max_new_tokens
        self.max_chars = max_chars or self.default_max_chars

    @staticmethod
    def backend_from_config(llm_cfg, home) -> object:
        """The explainer's backend: the shared local model with the explainer's adapter attached (peft
        multi-adapter, no second copy of the base model), or the configured endpoint."""
        if llm_cfg.endpoint:
            from agent.llm.remote import RemoteBackend

            return RemoteBackend.from_config(llm_cfg, home)
        from agent.llm.backend import LocalBackend
        from agent.llm.loading import NO_ADAPTER, attach_adapter, load_model, resolve_adapter

        llm = load_model(llm_cfg, home)
        path = resolve_adapter(llm_cfg.explain_adapter, home)
        if path is None:
            return LocalBackend(llm, batch_size=llm_cfg.batch_size, adapter=NO_ADAPTER)
        attach_adapter(llm, "explain", path)
        return LocalBackend(llm, batch_size=llm_cfg.batch_size, adapter="explain")

    def constraints(self, facts: Sequence[tuple[Item, Evidence]]) -> list | None:
        """One claim constraint per (item, evidence) when decoding is constrained, else None."""
        if not self.constrained:
            return None
        from agent.llm.constrained import ClaimConstraint

        return [ClaimConstraint.for_pick(self.checker, item, evidence) for item, evidence in facts]

    def write(self, task: str, fields: Sequence[dict[str, str]], distinct: bool = False,
              constraints: Sequence | None = None, avoid: Sequence[str] = ()) -> Iterator[Draft]:
        """One draft per field set, in the order the rows finish; `constraints` (one per field set, local model
        only) keep each row to what its pick's evidence supports; with `distinct`, no row repeats a phrase of
        another or of a text of `avoid` (written before: the reply's earlier explanations)."""
        from agent.llm.prompting import constant_prefix, encode, render_chat

        tokenizer = self.backend.tokenizer
        texts = [render_chat(tokenizer, task, **f) for f in fields]
        llm = getattr(self.backend, "llm", None)
        if llm is None:  # a remote endpoint: one request, every row at once
            for n, (raw, finished) in enumerate(self.backend.generate(texts, self.max_new_tokens)):
                yield Draft(n, finish_text(raw, finished, self.max_chars, self.max_sentences))
            return
        from agent.llm.generation import Sampling, generate_rows

        sampling = Sampling(distinct_ngram=DISTINCT_NGRAM if distinct else 0, floor=MIN_TOKEN_LOGPROB,
                            backtracks=self.backtracks,
                            avoid=tuple(tuple(encode(tokenizer, text)) for text in avoid) if distinct else ())
        for g in generate_rows(llm, texts, self.max_new_tokens, prefix=constant_prefix(tokenizer, task),
                               sampling=sampling, adapter=self.backend.adapter, constraints=constraints):
            yield Draft(g.row, finish_text(g.text, g.finished, self.max_chars, self.max_sentences), g.worst_logprob)


def reply_titles(picks: Sequence[PickContext]) -> list[str]:
    """The titles a reply's explanations may name (each pick's and its evidence's), each one word to the 5-word
    overlap rule (`claims.shared_ngram`)."""
    return sorted({p.item.title for p in picks}
                  | {bare_title(label) for p in picks for _, label in p.evidence.titles()})


class Explainer(SentenceWriter):

    @classmethod
    def from_config(cls, llm_cfg, home, catalog: Catalog) -> "Explainer":
        return cls(cls.backend_from_config(llm_cfg, home), catalog, llm_cfg.explain_max_new_tokens,
                   llm_cfg.explain_max_chars, constrained=llm_cfg.explain_constrained)

    def prompt(self, context: PickContext) -> str:
        from agent.llm.prompting import render_chat

        return render_chat(self.backend.tokenizer, "explain", **explain_fields(context))

    def stream(self, picks: Sequence[PickContext], fallbacks: Sequence[str],
               alternatives: Sequence[Sequence[str]] = ()) -> Iterator[Explanation]:
        """One explanation per pick, in pick order, each as soon as it and every earlier one are ready.
        `fallbacks`: the template explanation of each pick (shown where the model's sentence is rejected);
        `alternatives`: per pick, other wordings of it, shown instead where the template would repeat a 5-word
        sequence of an explanation shown before it.
        A local model writes the first pick alone, then the others in one batch: a batch's rows take as many
        forward passes as its longest row, so the first explanation is shown after one short row's passes instead
        of the whole batch's (the later rows then avoid the phrases of what was shown)."""
        limits = self.constraints([(p.item, p.evidence) for p in picks])
        fields = [explain_fields(p) for p in picks]
        local = getattr(self.backend, "llm", None) is not None
        groups = [range(0, 1), range(1, len(picks))] if local and len(picks) > 1 else [range(len(picks))]
        shown: list[str] = []
        titles = reply_titles(picks)
        for group in groups:
            ready: dict[int, Draft] = {}
            following = group.start
            for draft in self.write("explain", [fields[i] for i in group], distinct=True, avoid=list(shown),
                                    constraints=None if limits is None else [limits[i] for i in group]):
                ready[group.start + draft.index] = draft
                while following in ready:
                    wordings = [fallbacks[following], *(alternatives[following] if alternatives else ())]
                    note = self._judge(picks[following], ready.pop(following), wordings, shown, titles)
                    shown.append(note.text)
                    yield note
                    following += 1

    def explain(self, picks: Sequence[PickContext], fallbacks: Sequence[str],
                alternatives: Sequence[Sequence[str]] = ()) -> list[Explanation]:
        return list(self.stream(picks, fallbacks, alternatives))

    def _judge(self, pick: PickContext, draft: Draft, wordings: Sequence[str], shown: Sequence[str],
               titles: Sequence[str] = ()) -> Explanation:
        """The draft if it passes; else the first template wording that repeats no phrase shown before it."""
        fallback = next((w for w in wordings if not shared_ngram(w, shown, titles=titles)), wordings[0])
        item_id, text = pick.item.item_id, draft.text
        if text is None:
            return Explanation(item_id, fallback, "fallback", (NO_SENTENCE,))
        verdict = self.checker.check_claims(text, pick.item, pick.evidence, pick.asked_genres)
        garbled = draft.fluency_problems()
        problems = list(verdict.problems) + list(garbled)
        repeated = shared_ngram(text, shown, titles=titles)
        if repeated:
            problems.append(f"repeats {' '.join(repeated)!r} from an earlier explanation of the reply")
        if problems:
            return Explanation(item_id, fallback, "fallback", tuple(problems), draft=text, garbled=bool(garbled))
        return Explanation(item_id, text, "llm", draft=text, personal=verdict.personal)
