"""`RecommenderAgent`: the Python API of docs/ARCHITECTURE.md §3.

    agent = RecommenderAgent.from_config()                 # or a marquee.toml path / Settings, plus overrides
    reply = agent.chat("sci-fi and action films", session_id="s1")
    for event in agent.stream("something older", session_id="s1"): ...   # text deltas, then items
    agent.feedback("s1", item_id, liked=True); agent.reset("s1")

Sessions are isolated: each has its own lock (`agent.session_locks`: bounded waits, and a paused stream
cannot keep it forever), a turn works on a copy of the stored session state and
commits it (one database transaction, agent.storage) only when the reply is complete, so an error or an
abandoned stream leaves the previous state intact. The database, not this process, holds the state: several
replicas can serve one session, and a turn that finds the stored state changed by another replica meanwhile
merges into it (agent.session.merge) instead of overwriting it (docs/ARCHITECTURE.md §8). Every argument is checked first by `agent.validation`
(strict types, ranges from the catalog and the config): bad input raises `InputError` (a ValueError) and
changes nothing.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from agent.chains import build_turn_chain
from retrieval.config import Settings
from agent.llm_parts import LLMParts
from agent.pipeline import Turn, TurnPipeline
from agent.planner import Profile
from agent.replies import Reply, ReplyItem, StreamEvent
from agent.session import SessionState, merge
from agent.session_locks import SessionBusyError, SessionLocks
from agent.storage import Storage
from agent.understanding import PreferenceParser, clean_message
from agent.locale import Locale, Note
from agent.understanding.aliases import AliasIndex, shown_names
from agent.understanding.mentions import CJK
from agent.understanding.vocabulary import KnownWords
from agent.understanding.limits import RangeCheck
from agent.validation import (ChatRequest, FeedbackRequest, InputError, Limits, PreferencesUpdate, SessionRequest,
                              validate, year_bounds)

log = logging.getLogger(__name__)

UNCHANGED: Any = ...  # set_preferences: leave this field as it is


class RecommenderAgent:
    def __init__(self, settings: Settings, service=None, storage: Storage | None = None):
        from retrieval.service import RetrievalService

        self.settings = settings
        self.cfg = settings.agent
        self.service = service or RetrievalService.from_config(settings)
        self.catalog = self.service.catalog
        self.storage = storage or Storage.from_settings(settings)
        years = [it.year for it in self.catalog if it.year] or [1900, 2000]
        labels = {it.item_id: it.label for it in self.catalog}
        self.parser = PreferenceParser(self._match_title, (min(years), max(years)),
                                       titles=[it.title for it in self.catalog], aliases=AliasIndex.for_catalog(labels))
        self.limits = Limits(years=year_bounds(years), max_count=self.cfg.max_count,
                             resolve_genres=self.service.resolve_genres)
        wants_llm = self.cfg.rerank or self.cfg.explain == "llm" or self.cfg.expand_query
        self.llm = LLMParts(settings, self.catalog) if wants_llm else None
        self.pipeline = TurnPipeline(self.catalog, self.service.candidates, self.cfg, self.llm, self.parser,
                                     known_word=self._known_words(settings), log_evidence=lambda: self.service.evidence,
                                     chinese_names=shown_names(labels),
                                     ranges=RangeCheck((min(years), max(years)), self.cfg.max_count))
        self.chain = build_turn_chain(self.pipeline, attach_user=self.attach_user)
        self._locks = SessionLocks(wait_s=self.cfg.session_wait_s, lease_s=self.cfg.stream_pause_s)
        self.tool_mode = None
        if self.cfg.mode == "tools":
            from agent.tools import chat_model_from_config

            self.use_chat_model(chat_model_from_config(self.cfg))
        elif self.cfg.mode != "planner":
            raise ValueError(f"agent.mode must be 'planner' or 'tools', got {self.cfg.mode!r}")
        log.info("agent ready: catalog %s (%d items), MARQUEE_HOME %s, mode %s, rerank %s, explain %s",
                 self.catalog.name, len(self.catalog), settings.home, self.cfg.mode, self.cfg.rerank, self.cfg.explain)

    @classmethod
    def from_config(cls, config: str | Settings | None = None, **overrides: Any) -> "RecommenderAgent":
        """`config`: a marquee.toml path, a `Settings` object, or None (defaults → marquee.toml → env);
        `overrides`: settings fields, e.g. home=..., agent={"rerank": False}."""
        if isinstance(config, Settings):
            settings = config.model_copy(update=overrides) if overrides else config
        else:
            settings = Settings.load(config, **overrides)
        return cls(settings)

    # ------------------------------------------------------------------ validation
    def validate(self, model, data: dict):
        """`data` as `model` (an `agent.validation` request) with this catalog's limits; InputError if bad."""
        return validate(model, data, self.limits.context())

    def _request(self, message, session_id, user_id, account=None) -> ChatRequest:
        return self.validate(ChatRequest, {"message": message, "session_id": session_id, "user_id": user_id,
                                           "account": account})

    def _sid(self, session_id) -> str:
        return self.validate(SessionRequest, {"session_id": session_id}).session_id

    # ------------------------------------------------------------------ conversation
    # `user_id` (Python API, CLI --user): the caller vouches for the user, who owns the stored profile and, when
    # the catalog knows them, personalises from their history. `account` (web --auth): the signed-in user, who
    # owns the stored profile. A user claimed in a message ("I am user 196") only personalises this session.
    def chat(self, message: str, session_id: str = "default", user_id: str | None = None,
             account: str | None = None) -> Reply:
        request = self._request(message, session_id, user_id, account)
        if self.tool_mode is not None:
            return self.tool_mode.chat(request.message, session_id=request.session_id, user_id=request.user_id)
        return self._planner_reply(request)

    def planner_chat(self, message: str, session_id: str = "default", user_id: str | None = None) -> Reply:
        """One turn through the deterministic planner (what the `recommend` tool runs in tool mode)."""
        return self._planner_reply(self._request(message, session_id, user_id))

    def _planner_reply(self, request: ChatRequest) -> Reply:
        reply = None
        for event in self._stream_planner(request):
            if event.kind == "items":
                reply = event.reply
        return reply

    def stream(self, message: str, session_id: str = "default", user_id: str | None = None,
               account: str | None = None) -> Iterator[StreamEvent]:
        """Text deltas (kind="text") as the reply is produced, then one kind="items" event with the Reply.
        Bad arguments raise InputError here, before the first event (not at the first `next`)."""
        request = self._request(message, session_id, user_id, account)
        if self.tool_mode is not None:
            return self._tool_stream(request)
        return self._stream_planner(request)

    def _tool_stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        reply = self.tool_mode.chat(request.message, session_id=request.session_id, user_id=request.user_id)
        yield StreamEvent(kind="text", text=reply.text)
        yield StreamEvent(kind="items", items=reply.items, reply=reply)

    def use_chat_model(self, model, checkpointer=None) -> None:
        """Switch to tool-calling mode: `model` (a LangChain chat model with tool calling) drives the
        conversation through the agent's tools; None switches back to the deterministic planner."""
        from agent.tools import ToolCallingChat

        self.tool_mode = None if model is None else ToolCallingChat(self, model, checkpointer=checkpointer)

    def _stream_planner(self, request: ChatRequest) -> Iterator[StreamEvent]:
        sid, message = request.session_id, request.message
        with self._locks.hold(sid) as token:
            def emit(event: StreamEvent, last: bool = False):
                """Yield with the session lock marked paused (see agent.session_locks), then check it is still
                ours; after the last event (the turn is committed) there is nothing left to check."""
                self._locks.pause(sid, token)
                yield event
                if not last:
                    self._locks.resume(sid, token)

            committed, version = self._load(sid)
            state = committed.model_copy(deep=True)
            text, _ = clean_message(message)
            if not text:  # no language to answer in: the line is bilingual
                hint = Locale("en").text("reply", "empty_message")
                yield from emit(StreamEvent(kind="text", text=hint))
                yield from emit(StreamEvent(kind="items", reply=Reply(text=hint, session_id=sid,
                                                                      state=self.describe(state))), last=True)
                return
            self._identify(state, request.user_id, request.account)
            turn = Turn(message=message, state=state)
            try:
                for chunk in self.chain.stream(turn):
                    if "text" in chunk:
                        yield from emit(StreamEvent(kind="text", text=chunk["text"]))
                    else:
                        turn = chunk["turn"]
            except (SessionBusyError, GeneratorExit):
                raise
            except Exception as exc:  # a bug must not cost the user their session: keep the committed state
                log.exception("turn failed in session %s", sid)
                sorry = Locale("zh" if CJK.search(text) else "en").text("reply", "sorry")
                error = f"{type(exc).__name__}: {exc}".splitlines()[0]
                yield from emit(StreamEvent(kind="text", text=sorry))
                yield from emit(StreamEvent(kind="items", reply=Reply(text=sorry, session_id=sid, error=error,
                                                                      state=self.describe(committed))), last=True)
                return
            state = self._commit(sid, committed, version, state, user_message=text, reply=turn.reply_text,
                                 items=[i.model_dump() for i in turn.items])
            reply = Reply(text=turn.reply_text, items=turn.items, understood=turn.preferences.summary(turn.locale),
                          session_id=sid, notes=turn.notes, state=self.describe(state),
                          language=turn.preferences.language,
                          search_query=turn.plan.request.query if turn.plan else "")
            yield from emit(StreamEvent(kind="items", items=reply.items, reply=reply), last=True)

    # ------------------------------------------------------------------ feedback and state
    def feedback(self, session_id: str, item_id: str, liked: bool | None = True, seen: bool = False,
                 account: str | None = None) -> dict:
        """Thumbs up (liked=True), down (liked=False) or "seen it" (seen=True) for an item; updates the
        session and, when the session has an account (`account`, or the one of its turns), that account's
        stored profile. Returns the state."""
        request = self.validate(FeedbackRequest, {"session_id": session_id, "item_id": item_id, "liked": liked,
                                                  "seen": seen, "account": account})
        return self.apply_feedback(request)

    def apply_feedback(self, request: FeedbackRequest) -> dict:
        """`feedback` for an already validated request (the web page and the CLI build it from an action)."""
        sid, item_id, kinds = request.session_id, request.item_id, request.kinds()
        if item_id not in self.catalog:
            raise InputError(f"unknown item id {item_id[:40]!r}: feedback needs an item_id from a reply")
        with self._lock(sid):
            base, version = self._load(sid)
            state = base.model_copy(deep=True)
            self._identify(state, None, request.account)
            for kind in kinds:
                state.mark(item_id, kind)
            state = self._commit(sid, base, version, state, events=[(item_id, kind) for kind in kinds])
            return self.describe(state)

    def reset(self, session_id: str) -> dict:
        """Forget the session's preferences and shown items (the user's stored profile stays)."""
        sid = self._sid(session_id)
        with self._lock(sid):
            base, version = self._load(sid)
            state = base.model_copy(deep=True)
            state.reset()
            return self.describe(self._commit(sid, base, version, state))

    def get_state(self, session_id: str) -> dict:
        sid = self._sid(session_id)
        with self._lock(sid):
            return self.describe(self._load(sid)[0])

    def set_preferences(self, session_id: str, genres=UNCHANGED, exclude_genres=UNCHANGED, year_min=UNCHANGED,
                        year_max=UNCHANGED, count=UNCHANGED, user_id=UNCHANGED) -> dict:
        """Edit the session's preferences directly (the web page's preference panel). Leave a field out
        to keep it; None clears years / count / user. Raises InputError (a ValueError) with the valid choices;
        a rejected edit changes nothing."""
        given = {"genres": genres, "exclude_genres": exclude_genres, "year_min": year_min, "year_max": year_max,
                 "count": count, "user_id": user_id}
        return self.apply_preferences(self.validate(PreferencesUpdate, {
            "session_id": session_id, **{k: v for k, v in given.items() if v is not UNCHANGED}}))

    def apply_preferences(self, update: PreferencesUpdate) -> dict:
        """`set_preferences` for an already validated update (the web API validates its JSON object)."""
        sid = update.session_id
        with self._lock(sid):
            base, version = self._load(sid)
            state = base.model_copy(deep=True)
            for name, value in update.changes().items():
                setattr(state, name, value if value is not None or name not in ("genres", "exclude_genres") else [])
                if name == "genres":
                    state.genre_mode = "any"  # the panel lists genres: any of them
                if name == "user_id":  # the caller vouches for this user (see `chat`)
                    state.account = value
            if set(state.genres) & set(state.exclude_genres):  # with the session's other list
                raise InputError(f"a genre cannot be both wanted and excluded: "
                                 f"{', '.join(sorted(set(state.genres) & set(state.exclude_genres)))}")
            if state.year_min is not None and state.year_max is not None and state.year_min > state.year_max:
                raise InputError(f"year_min {state.year_min} is after year_max {state.year_max}")
            return self.describe(self._commit(sid, base, version, state))

    def stats(self) -> dict:
        """What the agent holds in memory (for monitoring and `marquee bench soak`): sessions whose lock is held
        or awaited right now. Session states are not cached: every call reads the database (see `_load`)."""
        return {"sessions_locked": len(self._locks)}

    def history(self, session_id: str) -> list[dict]:
        return self.storage.messages(self._sid(session_id))

    def describe(self, state: SessionState) -> dict:
        """The session's preferences with titles, for people and the web page's panel."""
        titled = lambda ids: [{"item_id": i, "title": self.catalog[i].label} for i in ids if i in self.catalog]  # noqa: E731
        return {"session_id": state.session_id, "user_id": state.user_id, "genres": list(state.genres),
                "genre_mode": state.genre_mode, "audience_genres": list(state.audience_genres),
                "exclude_genres": list(state.exclude_genres), "year_min": state.year_min, "year_max": state.year_max,
                "count": state.count or self.cfg.default_count, "moods": list(state.moods), "query": state.query,
                "liked": titled(state.liked), "anchors": titled(state.anchors), "disliked": titled(state.disliked),
                "seen": titled(state.seen),
                "shown": len(state.shown), "turns": state.turns}

    # ------------------------------------------------------------------ internals
    def _lock(self, sid: str):
        """The session's lock for one call (raises SessionBusyError after `[agent] session_wait_s`)."""
        return self._locks.hold(sid)

    def _load(self, sid: str) -> tuple[SessionState, int]:
        """The committed state and its version, read from the database every time (another replica may have
        changed it); a new session has version 0. Call with the session's lock held."""
        stored, version = self.storage.load_session_versioned(sid)
        return (SessionState.model_validate(stored) if stored else SessionState(session_id=sid)), version

    def _commit(self, sid: str, base: SessionState, version: int, ours: SessionState, **rows) -> SessionState:
        """Store `ours` (computed from `base` at `version`) with the turn's messages / feedback `rows`, in one
        transaction. If another writer committed since, merge both changes instead of overwriting theirs."""
        def update(stored: dict | None, stored_version: int) -> dict:
            if stored_version == version:
                return ours.model_dump()
            theirs = SessionState.model_validate(stored) if stored else SessionState(session_id=sid)
            log.info("session %s changed elsewhere during this call (version %d → %d): merging", sid, version,
                     stored_version)
            return merge(base, ours, theirs).model_dump()

        written, _ = self.storage.commit(sid, update, owner=ours.account, **rows)
        return SessionState.model_validate(written)

    @staticmethod
    def _identify(state: SessionState, user_id: str | None, account: str | None) -> None:
        if user_id is not None:  # vouched for by the caller: personalisation and profile
            state.user_id = state.account = user_id
        if account is not None:  # signed in: the profile's owner
            state.account = account

    def _known_words(self, settings: Settings) -> KnownWords | None:
        from retrieval.embeddings import ModelMissingError, resolve_model_path

        try:
            vocab = resolve_model_path(settings.embedding.model) / "vocab.txt"
        except ModelMissingError:
            vocab = None
        return KnownWords.from_files(vocab, [f"{it.title} {it.description}" for it in self.catalog])

    def _match_title(self, text: str):
        hits = self.service.titles.match(text, 1)
        if hits and hits[0][1] >= self.cfg.title_threshold:
            item, score = hits[0]
            return item.item_id, item.label, float(score)
        return None

    def known_user(self, user_id: str | None) -> bool:
        return bool(user_id) and self.service.histories.knows(user_id)

    def user_history(self, user_id: str) -> frozenset[str]:
        """Items a known catalog user has interacted with (they count as seen)."""
        return frozenset(self.catalog.at(i).item_id for i in self.service.histories.of(user_id))

    def recent_history(self, user_id: str, n: int = 5) -> tuple[str, ...]:
        """A known user's last n logged items, oldest first (`retrieval.histories`: file order breaks ties)."""
        return tuple(self.catalog.at(i).item_id for i in self.service.histories.recent(user_id, n))

    def attach_user(self, turn: Turn) -> None:
        """Join the account's stored profile and (for a known catalog user) the logged history to the turn."""
        uid, account = turn.state.user_id, turn.state.account
        if account:
            turn.profile = Profile.of(self.storage.profile(account))
        if not uid:
            return
        turn.known_user = self.known_user(uid)
        if turn.known_user:
            turn.user_history = self.user_history(uid)
            turn.recent = self.recent_history(uid)
        elif turn.preferences.user_id:
            turn.notes.append(turn.locale.note(Note("unknown_user", {"user": uid})))


__all__ = ["RecommenderAgent", "Reply", "ReplyItem", "StreamEvent"]
