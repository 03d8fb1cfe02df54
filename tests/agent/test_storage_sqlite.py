"""SQLite persistence: WAL mode, atomic turns, profiles, and many threads writing at once."""
from __future__ import annotations

import sqlite3
import threading

import pytest

from agent.storage import Storage


@pytest.fixture
def store(tmp_path):
    s = Storage(tmp_path / "marquee.db")
    yield s
    s.close()


def test_wal_mode_and_schema(store):
    assert store.journal_mode() == "wal"
    tables = {r[0] for r in sqlite3.connect(store.path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"users", "sessions", "messages", "feedback"} <= tables


def test_turn_is_saved_and_reopened(store, tmp_path):
    store.save_turn("s1", "u1", {"genres": ["Comedy"]}, user_message="comedies", reply="Here…",
                    items=[{"item_id": "1"}])
    again = Storage(tmp_path / "marquee.db")
    assert again.load_session("s1") == {"genres": ["Comedy"]}
    assert [(m["role"], m["content"]) for m in again.messages("s1")] == [("user", "comedies"),
                                                                           ("assistant", "Here…")]
    assert again.messages("s1")[1]["items"] == [{"item_id": "1"}]
    assert again.load_session("nope") is None


def test_failed_write_leaves_previous_state(store):
    store.save_turn("s1", None, {"v": 1})
    with pytest.raises(sqlite3.IntegrityError):
        # a bad message row (role violates CHECK) aborts the whole turn, state included
        with store._tx() as db:
            db.execute("UPDATE sessions SET state = '{\"v\": 2}' WHERE session_id = 's1'")
            db.execute("INSERT INTO messages(session_id, role, content, created_at) VALUES ('s1', 'robot', 'x', 0)")
    assert store.load_session("s1") == {"v": 1}
    assert store.messages("s1") == []


def test_profile_latest_opinion_wins(store):
    store.add_feedback("s1", "u1", "10", "like")
    store.add_feedback("s2", "u1", "10", "dislike")
    store.add_feedback("s2", "u1", "11", "like")
    store.add_feedback("s2", "u1", "12", "seen")
    store.add_feedback("s3", "u2", "13", "like")
    assert store.profile("u1") == {"liked": ["11"], "disliked": ["10"], "seen": ["12"]}
    assert store.profile("u2")["liked"] == ["13"]
    assert store.feedback("s2") == [("10", "dislike"), ("11", "like"), ("12", "seen")]


def test_concurrent_writers_never_lose_or_mix_rows(store):
    errors = []

    def worker(n: int) -> None:
        try:
            for turn in range(25):
                store.save_turn(f"s{n}", f"u{n}", {"owner": n, "turn": turn}, user_message=f"m{n}-{turn}",
                                reply=f"r{n}-{turn}")
                store.add_feedback(f"s{n}", f"u{n}", str(turn), "like")
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for n in range(6):
        assert store.load_session(f"s{n}") == {"owner": n, "turn": 24}
        messages = store.messages(f"s{n}")
        assert len(messages) == 50 and all(m["content"].endswith(tuple(f"{n}-{t}" for t in range(25)))
                                           for m in messages)
        assert len(store.profile(f"u{n}")["liked"]) == 25
