"""One conversational turn as four steps over a `Turn` record: understand → retrieve → rerank → explain.

Each step is a plain method (so `agent.chains` can compose them as LangChain Runnables); `explain`
is a generator that yields the reply text as it is produced and finally the finished items.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from agent.llm.explainer import Wishes, template_explanation
from agent.llm_parts import LLMParts
from agent.planner import Plan, Profile, guard, plan_and_retrieve, query_text, select_picks
from agent.replies import ReplyItem
from agent.session import SessionState
from agent.understanding import Preferences, PreferenceParser, clean_message, describe_years
from agent.understanding.parser import MAX_MESSAGE_CHARS
from retrieval.candidates.base import Candidate
from retrieval.catalog.schema import Catalog

log = logging.getLogger(__name__)

INJECTION_NOTE = ("I only recommend titles from the catalog and can't change how I work or reveal other "
                  "conversations; I used the rest of your message as preferences.")


@dataclass
class Turn:
    """Everything one turn reads and produces (the state is the session's, updated in place)."""

    message: str
    state: SessionState
    profile: Profile = Profile()
    known_user: bool = False
    user_history: frozenset[str] = frozenset()  # logged items of a known user: already seen
    recent: tuple[str, ...] = ()  # a known user's latest logged items, oldest first
    text: str = ""
    truncated: bool = False
    preferences: Preferences = field(default_factory=Preferences)
    notes: list[str] = field(default_factory=list)
    plan: Plan | None = None
    candidates: list[Candidate] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)  # item_id -> final score
    expansion: str = ""
    items: list[ReplyItem] = field(default_factory=list)
    reply_text: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    understood_nothing: bool = False  # nothing usable in the message or before it: the reply helps instead

    @property
    def count(self) -> int:
        return self.plan.count if self.plan else (self.state.count or 5)


class TurnPipeline:
    def __init__(self, catalog: Catalog, retrieve, config, llm: LLMParts | None = None,
                 parser: PreferenceParser | None = None, known_word=None):
        self.catalog = catalog
        self.retrieve_fn = retrieve  # (CandidateRequest, k) -> list[Candidate]
        self.cfg = config  # retrieval.config.AgentConfig
        self.llm = llm
        self.parser = parser
        # known_word(word) -> bool: does the free text carry meaning ("robots") or is it noise ("asdfgh")?
        self.known_word = known_word

    # ------------------------------------------------------------------ 1. understand
    def understand(self, turn: Turn) -> Turn:
        t0 = time.perf_counter()
        turn.text, turn.truncated = clean_message(turn.message)
        turn.preferences = self.parser.parse(turn.text)
        p = turn.preferences
        if turn.truncated:
            turn.notes.append(f"Your message was long, so I read only its first {MAX_MESSAGE_CHARS} characters.")
        if p.injection:
            turn.notes.append(INJECTION_NOTE)
        for mention in p.unknown_titles:
            turn.notes.append(f'I couldn\'t find "{mention}" in the catalog, so I left it out.')
        needed = p.count or turn.state.count or self.cfg.default_count
        turn.understood_nothing = not self.usable(p) and not turn.state.has_preferences()
        turn.notes += turn.state.apply(p, self.catalog, needed=needed)
        turn.timings["understand"] = time.perf_counter() - t0
        return turn

    def usable(self, p: Preferences) -> bool:
        """Does the message say anything to recommend from? Free text counts when a word of it is known."""
        if p.is_empty():
            return False
        if p.model_copy(update={"query": ""}).is_empty():
            words = p.query.split()
            return self.known_word is None or any(self.known_word(w) for w in words)
        return True

    # ------------------------------------------------------------------ 2. retrieve
    def retrieve(self, turn: Turn) -> Turn:
        t0 = time.perf_counter()
        state = turn.state
        if turn.understood_nothing and not turn.known_user:
            turn.timings["retrieve"] = time.perf_counter() - t0
            return turn  # no silent popularity list: the reply asks instead (see `header`)
        count = min(state.count or self.cfg.default_count, self.cfg.max_count)
        if state.count and state.count > self.cfg.max_count:
            turn.notes.append(f"I show at most {self.cfg.max_count} picks at a time.")
        if self.cfg.expand_query and self.llm is not None and (turn.preferences.query or state.genres):
            turn.expansion = self.llm.expand(state, self.catalog, history=turn.recent)
        pool = max(self.cfg.pool, count)
        turn.plan, found = plan_and_retrieve(
            state, turn.profile, self.retrieve_fn, count, pool, exclude_shown=self.cfg.exclude_shown,
            query=query_text(state, turn.expansion) if turn.expansion else "", known_user=turn.known_user,
            words=turn.expansion or None)
        turn.notes += turn.plan.notes
        # guard with every exclusion, including a known user's logged history
        c = turn.plan.request.constraints
        strict = replace(c, exclude_ids=c.exclude_ids | turn.user_history | set(turn.plan.request.liked)
                         | set(turn.plan.request.disliked))
        turn.candidates = guard(found, self.catalog, strict, pool)
        turn.scores = {cand.item.item_id: float(cand.score) for cand in turn.candidates}
        turn.timings["retrieve"] = time.perf_counter() - t0
        return turn

    # ------------------------------------------------------------------ 3. rerank
    def rerank(self, turn: Turn) -> Turn:
        t0 = time.perf_counter()
        if self.cfg.rerank and self.llm is not None and len(turn.candidates) > 1:
            reranked = self.llm.rerank(turn.state, turn.candidates, self.catalog, turn.text)
            if reranked is not None:
                turn.candidates = [c for c, _ in reranked]
                turn.scores = {c.item.item_id: s for c, s in reranked}
        genres, mode = turn.state.genres, turn.state.genre_mode
        turn.candidates = select_picks(turn.candidates, turn.count, genres, mode)
        turn.timings["rerank"] = time.perf_counter() - t0
        return turn

    # ------------------------------------------------------------------ 4. explain + compose (streams)
    def explain(self, turn: Turn) -> Iterator[str]:
        t0 = time.perf_counter()
        header = self.header(turn)
        yield header
        explanations = self._explanations(turn)
        parts = [header]
        for n, cand in enumerate(turn.candidates, start=1):
            item = cand.item
            text, source = next(explanations)
            turn.items.append(ReplyItem(item_id=item.item_id, title=item.title, year=item.year,
                                        genres=list(item.genres), description=item.description,
                                        explanation=text, explanation_source=source,
                                        score=round(turn.scores.get(item.item_id, cand.score), 6)))
            line = f"\n{n}. {item.label} — {text}"
            parts.append(line)
            yield line
        footer = self.footer(turn)
        if footer:
            parts.append(footer)
            yield footer
        turn.reply_text = "".join(parts)
        turn.state.record_shown([i.item_id for i in turn.items])
        turn.timings["explain"] = time.perf_counter() - t0

    def _explanations(self, turn: Turn) -> Iterator[tuple[str, str]]:
        items = [c.item for c in turn.candidates]
        by_id = {c.item.item_id: c for c in turn.candidates}
        generated = None
        if self.cfg.explain == "llm" and self.llm is not None and items:
            generated = self.llm.explain(items, turn.state, self.catalog)
        wishes = wishes_of(turn.state, self.catalog)
        for n, item in enumerate(items):
            text, source = generated[n] if generated else (None, "template")
            if text is None:  # no LLM, or its sentence failed the grounding check
                text = template_explanation(item, wishes, by_id[item.item_id].sources)
            yield text, source

    def header(self, turn: Turn) -> str:
        n = len(turn.candidates)
        if turn.plan is None and turn.understood_nothing:
            return self.parser.lex.help[turn.preferences.language]
        if n == 0:
            return "I couldn't find anything that fits."
        state = turn.state
        what = "/".join(g.lower() for g in state.genres) or ("personal" if turn.known_user or state.liked else "")
        years = describe_years(state.year_min, state.year_max)
        return (f"Here {'is' if n == 1 else 'are'} {n} {what + ' ' if what else ''}pick{'s' if n != 1 else ''}"
                f"{' ' + years if years else ''}:")

    def footer(self, turn: Turn) -> str:
        if turn.plan is None and turn.understood_nothing:
            return ("\n\n" + "\n".join(turn.notes)) if turn.notes else ""  # e.g. the injection note
        lines = []
        understood = turn.preferences.summary()
        if understood:
            lines.append(f"I understood: {understood}.")
        elif turn.text and not turn.preferences.injection:
            lines.append("I didn't catch a preference in that, so these follow what you said before"
                         + (" (or what is popular)." if turn.state.turns == 0 else "."))
        if turn.plan and turn.plan.relaxed_shown:
            lines.append("Some of these were shown before: nothing new fits everything you asked for.")
        lines += turn.notes
        return ("\n\n" + "\n".join(lines)) if lines else ""


def wishes_of(state: SessionState, catalog: Catalog) -> Wishes:
    """The session's wishes as the plain facts a template explanation may cite."""
    return Wishes(genres=tuple(state.genres), mood_genres=tuple(state.mood_genres), year_min=state.year_min,
                  year_max=state.year_max, liked_titles=tuple(catalog[i].title for i in state.liked if i in catalog))
