"""`Storage`: sessions (serialised state + a version), messages, feedback events and profiles, in SQLite or
PostgreSQL through one set of SQLAlchemy Core statements (docs/ARCHITECTURE.md §8).

Every write is one transaction that locks the session's row (SQLite: the database's write lock, BEGIN
IMMEDIATE; PostgreSQL: SELECT … FOR UPDATE), so a crash leaves the previous state readable and two replicas
writing the same session take turns. `commit` hands the stored state and its version to the caller's update
function inside that transaction: whoever read an older version can merge instead of overwriting.
Messages and feedback are appended, never rewritten, so no event is lost whichever write comes second.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from agent.storage.database import WRITE, StorageError, database_url, make_engine, parse_url, redact, sqlite_path
from agent.storage.health import check_database
from agent.storage.schema import feedback, messages, migrate, sessions, users

log = logging.getLogger(__name__)

# update(stored state or None, stored version) -> the state to write, or None to leave the session row alone
Update = Callable[[dict | None, int], dict | None]


class Storage:
    """`Storage(home / "marquee.db")`, `Storage("postgresql://…")` or `Storage.from_settings(settings)`; one per
    process, safe to share between threads. Opening checks the database (a damaged SQLite file is an error with
    the fix, never replaced) and applies pending schema migrations."""

    def __init__(self, target: str | Path, pool_size: int = 5, pool_timeout: float = 30.0, connect_timeout: int = 10):
        self.url = parse_url(target)
        self.path = sqlite_path(self.url)  # None for PostgreSQL
        self.location = str(self.path) if self.path is not None else redact(self.url)
        if self.path is not None:
            health = check_database(self.url)
            if not health.ok:
                raise health.error()
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(self.url, pool_size, pool_timeout, connect_timeout)
        self.dialect = self.engine.dialect.name
        self._insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        try:
            applied = migrate(self.engine)
        except OperationalError as exc:
            self.engine.dispose()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StorageError(f"cannot use the session database {self.location}: {reason}. Fix: start the "
                               "database server (for a local one: scripts/cluster.sh up) or correct [storage] url "
                               "(MARQUEE_STORAGE__URL)") from None
        if applied:
            log.info("session database %s: applied schema migration(s) %s", self.location, applied)

    @classmethod
    def from_settings(cls, settings) -> "Storage":
        cfg = settings.storage
        return cls(database_url(settings), cfg.pool_size, cfg.pool_timeout, cfg.connect_timeout)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One atomic write transaction (committed on success, rolled back on any exception)."""
        with self.engine.connect().execution_options(**{WRITE: True}) as conn, conn.begin():
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def journal_mode(self) -> str:
        if self.dialect != "sqlite":
            return "n/a (server)"
        with self._read() as conn:
            return conn.exec_driver_sql("PRAGMA journal_mode").scalar()

    # ------------------------------------------------------------------ sessions
    def load_session(self, session_id: str) -> dict | None:
        return self.load_session_versioned(session_id)[0]

    def load_session_versioned(self, session_id: str) -> tuple[dict | None, int]:
        """(state, version); (None, 0) for a session never written."""
        with self._read() as conn:
            row = conn.execute(select(sessions.c.state, sessions.c.version)
                               .where(sessions.c.session_id == session_id)).first()
        return (json.loads(row.state), row.version) if row else (None, 0)

    def commit(self, session_id: str, update_state: Update | None, owner: str | None = None,
               user_message: str | None = None, reply: str | None = None, items: list[dict] | None = None,
               events: Iterable[tuple[str, str]] = ()) -> tuple[dict | None, int]:
        """In ONE transaction with the session's row locked: the new state from `update_state(stored, version)`
        (version + 1), the turn's messages and the feedback `events` ((item_id, kind), profile owner `owner`).
        Returns (the state written or stored, its version)."""
        events = list(events)
        for attempt in range(3):
            created = False
            try:
                with self._write() as db:
                    row = db.execute(select(sessions.c.state, sessions.c.version)
                                     .where(sessions.c.session_id == session_id).with_for_update()).first()
                    stored, version = (json.loads(row.state), row.version) if row else (None, 0)
                    state = update_state(stored, version) if update_state is not None else None
                    now = time.time()
                    if owner:
                        db.execute(self._insert(users).values(user_id=owner, created_at=now)
                                   .on_conflict_do_nothing(index_elements=["user_id"]))
                    if state is not None:
                        values = dict(user_id=owner, state=json.dumps(state), updated_at=now, version=version + 1)
                        if row is None:
                            created = True
                            db.execute(sessions.insert().values(session_id=session_id, **values))
                        else:
                            db.execute(update(sessions).where(sessions.c.session_id == session_id).values(**values))
                        version += 1
                    else:
                        state = stored
                    self._append(db, session_id, owner, now, user_message, reply, items, events)
                return state, version
            except IntegrityError:
                # Two replicas creating the same new session: the second insert loses; retry, now as an update.
                if not created or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _append(db: Connection, session_id: str, owner: str | None, now: float, user_message: str | None,
                reply: str | None, items: list[dict] | None, events: list[tuple[str, str]]) -> None:
        if user_message is not None:
            db.execute(messages.insert().values(session_id=session_id, role="user", content=user_message,
                                                created_at=now))
        if reply is not None:
            db.execute(messages.insert().values(session_id=session_id, role="assistant", content=reply,
                                                items=json.dumps(items or []), created_at=now))
        for item_id, kind in events:
            db.execute(feedback.insert().values(session_id=session_id, user_id=owner, item_id=item_id, kind=kind,
                                                created_at=now))

    def save_turn(self, session_id: str, user_id: str | None, state: dict, user_message: str | None = None,
                  reply: str | None = None, items: list[dict] | None = None) -> None:
        """Write `state` as it is (whatever is stored) and the turn's messages, in one transaction."""
        self.commit(session_id, lambda _stored, _version: state, owner=user_id, user_message=user_message,
                    reply=reply, items=items)

    def messages(self, session_id: str, limit: int = 200) -> list[dict]:
        with self._read() as conn:
            rows = conn.execute(select(messages.c.role, messages.c.content, messages.c["items"])
                                .where(messages.c.session_id == session_id)
                                .order_by(messages.c.id.desc()).limit(limit)).all()
        return [{"role": r, "content": c, "items": json.loads(i) if i else []} for r, c, i in reversed(rows)]

    def sessions(self) -> list[str]:
        with self._read() as conn:
            return list(conn.execute(select(sessions.c.session_id).order_by(sessions.c.updated_at)).scalars())

    # ------------------------------------------------------------------ feedback and profiles
    def add_feedback(self, session_id: str, user_id: str | None, item_id: str, kind: str,
                     state: dict | None = None) -> None:
        """One feedback event for profile `user_id` (None: the session's only), with the session's new state."""
        self.commit(session_id, None if state is None else (lambda _stored, _version: state), owner=user_id,
                    events=[(item_id, kind)])

    def profile(self, user_id: str) -> dict[str, list[str]]:
        """An account's stored opinions across sessions; the latest of like/dislike per item wins."""
        with self._read() as conn:
            rows = conn.execute(select(feedback.c.item_id, feedback.c.kind).where(feedback.c.user_id == user_id)
                                .order_by(feedback.c.id)).all()
        opinion: dict[str, str] = {}
        seen: list[str] = []
        for item_id, kind in rows:
            if kind == "seen":
                seen.append(item_id)
            else:
                opinion[item_id] = kind
        return {"liked": [i for i, k in opinion.items() if k == "like"],
                "disliked": [i for i, k in opinion.items() if k == "dislike"],
                "seen": list(dict.fromkeys(seen))}

    def feedback(self, session_id: str) -> list[tuple[str, str]]:
        with self._read() as conn:
            return [(i, k) for i, k in conn.execute(select(feedback.c.item_id, feedback.c.kind)
                                                    .where(feedback.c.session_id == session_id)
                                                    .order_by(feedback.c.id))]

    def delete_session(self, session_id: str) -> None:
        with self._write() as db:
            db.execute(delete(sessions).where(sessions.c.session_id == session_id))
            db.execute(delete(messages).where(messages.c.session_id == session_id))

    def close(self) -> None:
        self.engine.dispose()
