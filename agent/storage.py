"""SQLite persistence (WAL): users, sessions (serialised state), messages and feedback.

Every write is one transaction, so a crash leaves the previous state readable. Connections are
per thread (sqlite3 objects must not cross threads); WAL lets readers run while one thread writes.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    user_id    TEXT PRIMARY KEY,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    user_id    TEXT,
    state      TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content    TEXT NOT NULL,
    items      TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_session ON messages(session_id, id);
CREATE TABLE IF NOT EXISTS feedback (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    user_id    TEXT,
    item_id    TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('like', 'dislike', 'seen')),
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_by_user ON feedback(user_id, id);
"""


class Storage:
    """`Storage(home / "marquee.db")`; safe to share between threads."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._tx() as db:
            for statement in filter(str.strip, SCHEMA.split(";")):  # executescript would commit early
                db.execute(statement)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self):
        """One atomic transaction (BEGIN IMMEDIATE takes the write lock up front: no upgrade deadlocks)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def journal_mode(self) -> str:
        return self._conn().execute("PRAGMA journal_mode").fetchone()[0]

    # ------------------------------------------------------------------ sessions
    def load_session(self, session_id: str) -> dict | None:
        row = self._conn().execute("SELECT state FROM sessions WHERE session_id = ?", (session_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def save_turn(self, session_id: str, user_id: str | None, state: dict, user_message: str | None = None,
                  reply: str | None = None, items: list[dict] | None = None) -> None:
        """Session state and the turn's messages in ONE transaction: both or neither."""
        now = time.time()
        with self._tx() as db:
            if user_id:
                db.execute("INSERT OR IGNORE INTO users(user_id, created_at) VALUES (?, ?)", (user_id, now))
            db.execute("INSERT INTO sessions(session_id, user_id, state, updated_at) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT(session_id) DO UPDATE SET user_id=excluded.user_id, state=excluded.state, "
                       "updated_at=excluded.updated_at", (session_id, user_id, json.dumps(state), now))
            if user_message is not None:
                db.execute("INSERT INTO messages(session_id, role, content, created_at) VALUES (?, 'user', ?, ?)",
                           (session_id, user_message, now))
            if reply is not None:
                db.execute("INSERT INTO messages(session_id, role, content, items, created_at) "
                           "VALUES (?, 'assistant', ?, ?, ?)",
                           (session_id, reply, json.dumps(items or []), now))

    def messages(self, session_id: str, limit: int = 200) -> list[dict]:
        rows = self._conn().execute(
            "SELECT role, content, items FROM messages WHERE session_id = ? ORDER BY id DESC LIMIT ?",
            (session_id, limit)).fetchall()
        return [{"role": r, "content": c, "items": json.loads(i) if i else []} for r, c, i in reversed(rows)]

    def sessions(self) -> list[str]:
        return [r[0] for r in self._conn().execute("SELECT session_id FROM sessions ORDER BY updated_at")]

    # ------------------------------------------------------------------ feedback and profiles
    def add_feedback(self, session_id: str, user_id: str | None, item_id: str, kind: str,
                     state: dict | None = None) -> None:
        now = time.time()
        with self._tx() as db:
            if user_id:
                db.execute("INSERT OR IGNORE INTO users(user_id, created_at) VALUES (?, ?)", (user_id, now))
            db.execute("INSERT INTO feedback(session_id, user_id, item_id, kind, created_at) VALUES (?, ?, ?, ?, ?)",
                       (session_id, user_id, item_id, kind, now))
            if state is not None:
                db.execute("INSERT INTO sessions(session_id, user_id, state, updated_at) VALUES (?, ?, ?, ?) "
                           "ON CONFLICT(session_id) DO UPDATE SET user_id=excluded.user_id, state=excluded.state, "
                           "updated_at=excluded.updated_at", (session_id, user_id, json.dumps(state), now))

    def profile(self, user_id: str) -> dict[str, list[str]]:
        """A user's stored opinions across sessions; the latest of like/dislike per item wins."""
        rows = self._conn().execute("SELECT item_id, kind FROM feedback WHERE user_id = ? ORDER BY id",
                                    (user_id,)).fetchall()
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
        return [(i, k) for i, k in self._conn().execute(
            "SELECT item_id, kind FROM feedback WHERE session_id = ? ORDER BY id", (session_id,))]

    def delete_session(self, session_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))
            db.execute("DELETE FROM messages WHERE session_id = ?", (session_id,))

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
