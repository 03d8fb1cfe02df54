"""One conversational turn as four steps over a `Turn` record: understand → retrieve → rerank → explain.

Each step is a plain method (so `agent.chains` can compose them as LangChain Runnables); `explain`
is a generator that yields the reply text as it is produced and finally the finished items.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from agent.evidence import gather_evidence
from agent.llm.evidence_text import ExplanationWriter
from agent.llm.pick_facts import PickContext
from agent.llm_parts import LLMParts, request_text
from agent.locale import Locale, Note
from agent.planner import Plan, Profile, guard, plan_and_retrieve, query_text, select_picks
from agent.replies import ReplyItem
from agent.session import SessionState
from agent.understanding import Preferences, PreferenceParser, clean_message
from agent.understanding.limits import RangeCheck
from agent.understanding.parser import MAX_MESSAGE_CHARS
from retrieval.candidates.base import Candidate
from retrieval.catalog.schema import Catalog
from retrieval.evidence import Evidence

log = logging.getLogger(__name__)


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
    locale: Locale = field(default_factory=Locale)  # the reply's language (the message's), set by `understand`
    evidence: list[Evidence] = field(default_factory=list)  # one per pick, set by `explain`

    @property
    def count(self) -> int:
        return self.plan.count if self.plan else (self.state.count or 5)


class TurnPipeline:
    def __init__(self, catalog: Catalog, retrieve, config, llm: LLMParts | None = None,
                 parser: PreferenceParser | None = None, known_word=None,
                 log_evidence: Callable[[], object] | None = None, chinese_names: Mapping[str, str] | None = None,
                 ranges: RangeCheck | None = None):
        self.catalog = catalog
        self.retrieve_fn = retrieve  # (CandidateRequest, k) -> list[Candidate]
        self.cfg = config  # retrieval.config.AgentConfig
        self.llm = llm
        self.parser = parser
        # known_word(word) -> bool: does the free text carry meaning ("robots") or is it noise ("asdfgh")?
        self.known_word = known_word
        self.log_evidence = log_evidence  # () -> retrieval.evidence.LogEvidence of the log, built once by the service
        self.chinese_names = dict(chinese_names or {})  # item_id -> the Chinese name replies show
        self.locales = {"en": Locale("en"), "zh": Locale("zh", self.chinese_names)}
        self.ranges = ranges  # out-of-range counts and years: clamped or cleared, with a note

    # ------------------------------------------------------------------ 1. understand
    def understand(self, turn: Turn) -> Turn:
        t0 = time.perf_counter()
        turn.text, turn.truncated = clean_message(turn.message)
        turn.preferences = self.parser.parse(turn.text)
        p = turn.preferences
        turn.locale = self.locales[p.language]
        notes = [Note("truncated", {"chars": MAX_MESSAGE_CHARS})] if turn.truncated else []
        notes += [Note("injection")] if p.injection else []
        notes += [Note("unknown_title", {"mention": mention}) for mention in p.unknown_titles]
        if self.ranges is not None:  # on what was read as preferences: an injected sentence is not repeated back
            notes += self.ranges.apply(self.parser.without_instructions(turn.text), p)
        needed = p.count or turn.state.count or self.cfg.default_count
        turn.understood_nothing = not self.usable(p) and not turn.state.has_preferences()
        notes += turn.state.apply(p, self.catalog, needed=needed)
        turn.notes += [turn.locale.note(n) for n in notes]
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
            turn.notes.append(turn.locale.note(Note("max_count", {"n": self.cfg.max_count})))
        if self.cfg.expand_query and self.llm is not None and (turn.preferences.query or state.genres):
            turn.expansion = self.llm.expand(state, self.catalog, history=turn.recent)
        pool = max(self.cfg.pool, count)
        turn.plan, found = plan_and_retrieve(
            state, turn.profile, self.retrieve_fn, count, pool, exclude_shown=self.cfg.exclude_shown,
            query=query_text(state, turn.expansion) if turn.expansion else "", known_user=turn.known_user,
            words=turn.expansion or None)
        turn.notes += [turn.locale.note(n) for n in turn.plan.notes]
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
        loc = turn.locale
        t_evidence = time.perf_counter()
        turn.evidence = self.evidence(turn)
        turn.timings["evidence"] = time.perf_counter() - t_evidence
        explanations = self._explanations(turn)
        parts = [header]
        picks_ready = time.perf_counter()
        for n, (cand, evidence) in enumerate(zip(turn.candidates, turn.evidence), start=1):
            item = cand.item
            text, source = next(explanations)
            # seconds from the picks (with their evidence) to the first / the last explanation handed on
            turn.timings.setdefault("first_explanation", time.perf_counter() - picks_ready)
            turn.timings["explanations"] = time.perf_counter() - picks_ready
            turn.items.append(ReplyItem(item_id=item.item_id, title=item.title,
                                        title_zh=self.chinese_names.get(item.item_id, ""), year=item.year,
                                        genres=list(item.genres), description=item.description, explanation=text,
                                        explanation_source=source, evidence=evidence,
                                        score=round(turn.scores.get(item.item_id, cand.score), 6)))
            line = loc.text("reply", "item_line", n=n, title=loc.title(item.item_id, item.label), explanation=text)
            parts.append(line)
            yield line
        footer = self.footer(turn)
        if footer:
            parts.append(footer)
            yield footer
        turn.reply_text = "".join(parts)
        turn.state.record_shown([i.item_id for i in turn.items])
        turn.timings["explain"] = time.perf_counter() - t0

    def evidence(self, turn: Turn) -> list[Evidence]:
        """The evidence of each pick (agent/evidence.py): log statistics come from the service, built once."""
        log = self.log_evidence() if self.log_evidence is not None else None
        known = turn.state.user_id if turn.known_user else None
        return gather_evidence(turn.candidates, turn.state, self.catalog, log, profile_liked=turn.profile.liked,
                               known_user=known)

    def _explanations(self, turn: Turn) -> Iterator[tuple[str, str]]:
        """(text, source) per pick in order: the LLM's checked sentences when `explain = "llm"` (English replies;
        a Chinese reply keeps its Chinese templates), else, and wherever a sentence is rejected, the templates."""
        items = [c.item for c in turn.candidates]
        loc = turn.locale
        writer = ExplanationWriter(loc.language, genre_name=loc.genre, title_name=loc.title)
        templates = writer.write(list(zip(items, turn.evidence)))
        if self.cfg.explain == "llm" and self.llm is not None and items and loc.language == "en":
            state = turn.state
            liked = tuple(self.catalog[i].label for i in dict.fromkeys([*state.anchors, *state.liked])
                          if i in self.catalog)
            picks = [PickContext(item=item, evidence=evidence, request=turn.text, wishes=request_text(state, ""),
                                 liked=liked, asked_genres=tuple(state.genres))
                     for item, evidence in zip(items, turn.evidence)]
            stream = self.llm.explain_stream(picks, templates, writer.variants(list(zip(items, turn.evidence))))
            if stream is not None:
                yield from stream
                return
        for template in templates:
            yield template, "template"

    def header(self, turn: Turn) -> str:
        if turn.plan is None and turn.understood_nothing:
            return self.parser.lex.help[turn.preferences.language]
        state = turn.state
        return turn.locale.header(len(turn.candidates), state.genres, personal=turn.known_user or bool(state.liked),
                                  year_min=state.year_min, year_max=state.year_max)

    def footer(self, turn: Turn) -> str:
        if turn.plan is None and turn.understood_nothing:
            return ("\n\n" + "\n".join(turn.notes)) if turn.notes else ""  # e.g. the injection note
        loc = turn.locale
        lines = []
        understood = turn.preferences.summary(loc)
        if understood:
            lines.append(loc.text("reply", "understood", summary=understood))
        elif turn.text and not turn.preferences.injection:
            lines.append(loc.text("reply", "nothing_caught_first" if turn.state.turns == 0 else "nothing_caught"))
        if turn.plan and turn.plan.relaxed_shown:
            lines.append(loc.text("reply", "relaxed_shown"))
        lines += turn.notes
        return ("\n\n" + "\n".join(lines)) if lines else ""
