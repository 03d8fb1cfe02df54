"""The agent's bridge to `agent.llm`: reranker, explainer and query expander, loaded lazily and once.

The LLM is an improvement, never a dependency of a reply: if the model cannot be loaded or a call
fails, the step reports None and the pipeline keeps the retriever's order / the template explanation.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence

from agent.session import SessionState
from retrieval.candidates.base import Candidate
from retrieval.catalog.schema import Catalog, Item

log = logging.getLogger(__name__)
EXPAND_TOKENS = 48


class LLMParts:
    def __init__(self, settings, catalog: Catalog):
        self.settings = settings
        self.catalog = catalog
        self._lock = threading.Lock()
        self._parts: dict[str, object] = {}
        self.errors: dict[str, str] = {}  # part -> why it is unavailable (shown by `marquee doctor`-like checks)

    def _get(self, name: str, build):
        with self._lock:
            if name not in self._parts and name not in self.errors:
                try:
                    self._parts[name] = build()
                except Exception as exc:  # missing model files, no agent.llm yet, …: degrade, never crash
                    self.errors[name] = f"{type(exc).__name__}: {exc}"
                    log.warning("LLM %s unavailable, falling back: %s", name, exc)
            return self._parts.get(name)

    # ------------------------------------------------------------------ rerank
    @property
    def reranker(self):
        def build():
            from agent.llm.reranker import LLMReranker

            return LLMReranker.from_config(self.settings.llm, self.settings.home, catalog=self.catalog)

        return self._get("reranker", build)

    def rerank(self, state: SessionState, candidates: Sequence[Candidate], catalog: Catalog,
               message: str) -> list[tuple[Candidate, float]] | None:
        reranker = self.reranker
        if reranker is None:
            return None
        from agent.llm.prompting import UserSummary

        label = lambda ids: tuple(catalog[i].label for i in ids if i in catalog)  # noqa: E731
        user = UserSummary(liked=label(state.liked), disliked=label(state.disliked), recent=(),
                           request=request_text(state, message))
        try:
            ranked = reranker.rerank(user, list(candidates))
        except Exception as exc:
            log.warning("rerank failed, keeping the retriever order: %s", exc)
            return None
        return [(r.candidate, float(r.score)) for r in ranked]

    # ------------------------------------------------------------------ explain
    @property
    def explainer(self):
        def build():
            from agent.llm.explainer import Explainer

            return Explainer.from_config(self.settings.llm, self.settings.home, self.catalog)

        return self._get("explainer", build)

    def explain_stream(self, picks: Sequence, fallbacks: Sequence[str],
                       alternatives: Sequence[Sequence[str]] = ()) -> Iterator[tuple[str, str]] | None:
        """(text, source) per pick, in order, as the LLM's sentences pass the claim check ("llm") or are replaced
        by the pick's template ("fallback"); None when the LLM is unavailable. `picks`: agent.llm.pick_facts
        PickContext per pick; `fallbacks`: their template explanations; `alternatives`: other wordings of them
        (Explainer.stream). If generation fails half-way, the rest get their templates (source "template")."""
        explainer = self.explainer
        if explainer is None:
            return None
        return self._guarded(explainer.stream(picks, fallbacks, alternatives), fallbacks)

    @staticmethod
    def _guarded(stream, fallbacks: Sequence[str]) -> Iterator[tuple[str, str]]:
        done = 0
        try:
            for note in stream:
                yield note.text, note.source
                done += 1
        except Exception as exc:  # the model failed mid-reply: the remaining picks keep their templates
            log.warning("explain failed, using templates: %s", exc)
            for text in fallbacks[done:]:
                yield text, "template"

    # ------------------------------------------------------------------ query expansion
    def expand(self, state: SessionState, catalog: Catalog, history: Sequence[str] = ()) -> str:
        """A richer description of what the user wants (seeds article 004), written by the LLM from their
        stated wishes and liked / recently watched titles; "" when unavailable. Only used as search text:
        it can steer similarity, never the hard constraints."""
        explainer = self.explainer
        if explainer is None:
            return ""
        from agent.llm.prompting import clean, render_chat

        backend = explainer.backend
        if getattr(backend, "llm", None) is not None:  # the base model: the explainer's adapter writes explanations
            from agent.llm.backend import LocalBackend
            from agent.llm.loading import NO_ADAPTER

            backend = LocalBackend(backend.llm, batch_size=backend.batch_size, adapter=NO_ADAPTER)
        liked = "; ".join(catalog[i].label for i in [*state.liked, *history][-6:] if i in catalog) or "none"
        try:
            prompt = render_chat(backend.tokenizer, "expand_query",
                                 request=clean(request_text(state, ""), 300) or "anything good", liked=liked)
            text, _ = backend.generate([prompt], EXPAND_TOKENS)[0]
        except Exception as exc:
            log.warning("query expansion failed, searching with the plain query: %s", exc)
            return ""
        return clean(text.strip().split("\n")[0], 300)


def request_text(state: SessionState, message: str) -> str:
    """The user's accumulated wishes as one line of facts for prompts (never raw instructions)."""
    from agent.understanding import describe_years

    parts = []
    if state.genres:
        parts.append("genres: " + ", ".join(state.genres))
    if state.exclude_genres:
        parts.append("not: " + ", ".join(state.exclude_genres))
    years = describe_years(state.year_min, state.year_max)
    if years:
        parts.append("years: " + years)
    if state.moods:
        parts.append("mood: " + ", ".join(state.moods))
    if state.query:
        parts.append("about: " + state.query)
    return "; ".join(parts)
