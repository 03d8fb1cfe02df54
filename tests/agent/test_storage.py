"""The session store, the same tests against both back ends (SQLite file, PostgreSQL server): schema and
migrations, atomic turns, profiles, versioned commits, and many threads or two processes writing at once."""
from __future__ import annotations

import multiprocessing
import sqlite3
import threading

import pytest
from sqlalchemy.exc import IntegrityError

from agent.storage import CURRENT_VERSION, Storage, StorageError
from agent.storage.schema import migrate, stored_version


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'marquee.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(url):
    s = Storage(url)
    yield s
    s.close()


def test_schema_is_migrated_once_and_reopening_changes_nothing(store, url):
    with store.engine.connect() as conn:
        assert stored_version(conn) == CURRENT_VERSION
    assert migrate(store.engine) == []  # idempotent: a second start (or replica) finds nothing to do
    again = Storage(url)
    with again.engine.connect() as conn:
        versions = conn.exec_driver_sql("SELECT version FROM schema_version ORDER BY version").scalars().all()
    assert versions == list(range(1, CURRENT_VERSION + 1))
    again.close()
    assert store.journal_mode() == ("wal" if store.dialect == "sqlite" else "n/a (server)")


def test_turn_is_saved_and_reopened(store, url):
    store.save_turn("s1", "u1", {"genres": ["Comedy"]}, user_message="comedies", reply="Here…",
                    items=[{"item_id": "1"}])
    again = Storage(url)
    assert again.load_session("s1") == {"genres": ["Comedy"]}
    assert again.load_session_versioned("s1") == ({"genres": ["Comedy"]}, 1)
    assert [(m["role"], m["content"]) for m in again.messages("s1")] == [("user", "comedies"),
                                                                           ("assistant", "Here…")]
    assert again.messages("s1")[1]["items"] == [{"item_id": "1"}]
    assert again.load_session("nope") is None and again.load_session_versioned("nope") == (None, 0)
    assert again.sessions() == ["s1"]
    again.close()


def test_failed_write_leaves_previous_state(store):
    store.save_turn("s1", None, {"v": 1})
    with pytest.raises(IntegrityError):
        # a bad feedback row (kind violates CHECK) aborts the whole commit: state and messages included
        store.commit("s1", lambda stored, version: {"v": 2}, user_message="hello", events=[("7", "love")])
    assert store.load_session_versioned("s1") == ({"v": 1}, 1)
    assert store.messages("s1") == [] and store.feedback("s1") == []

    def broken(stored, version):
        raise KeyError("a bug in the caller")

    with pytest.raises(KeyError):
        store.commit("s1", broken, reply="never stored")
    assert store.load_session_versioned("s1") == ({"v": 1}, 1) and store.messages("s1") == []


def test_profile_latest_opinion_wins(store):
    store.add_feedback("s1", "u1", "10", "like")
    store.add_feedback("s2", "u1", "10", "dislike")
    store.add_feedback("s2", "u1", "11", "like")
    store.add_feedback("s2", "u1", "12", "seen")
    store.add_feedback("s3", "u2", "13", "like")
    store.add_feedback("s4", None, "14", "like")  # no account: the session's only
    assert store.profile("u1") == {"liked": ["11"], "disliked": ["10"], "seen": ["12"]}
    assert store.profile("u2")["liked"] == ["13"]
    assert store.feedback("s2") == [("10", "dislike"), ("11", "like"), ("12", "seen")]
    assert store.feedback("s4") == [("14", "like")] and "14" not in str(store.profile("None"))


def test_commit_hands_the_stored_version_to_the_update(store):
    seen = []

    def record(stored, version):
        seen.append((stored, version))
        return {"n": (stored or {"n": 0})["n"] + 1}

    assert store.commit("s", record) == ({"n": 1}, 1)
    assert store.commit("s", record, events=[("5", "like")]) == ({"n": 2}, 2)
    assert store.commit("s", None, events=[("6", "seen")]) == ({"n": 2}, 2)  # events only: state untouched
    assert seen == [(None, 0), ({"n": 1}, 1)]
    assert store.feedback("s") == [("5", "like"), ("6", "seen")]


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


def _append_many(url: str, writer: str, count: int, start, results) -> None:
    """One process: `count` read-modify-write commits on the SAME session, each appending to a list."""
    store = Storage(url)
    start.wait()
    try:
        for i in range(count):
            def append(stored, version, i=i):
                state = stored or {"events": []}
                state["events"].append(f"{writer}-{i}")
                return state

            store.commit("shared", append, owner="alice", events=[(f"{writer}-{i}", "like")])
        results.put((writer, "ok"))
    except Exception as exc:  # noqa: BLE001 — reported to the parent
        results.put((writer, repr(exc)))
    finally:
        store.close()


def test_two_processes_writing_one_session_lose_nothing(store, url):
    """Two OS processes (as two replicas would) interleave commits on one session: every change lands."""
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_append_many, args=(url, name, 40, start, results)) for name in ("a", "b")]
    for proc in procs:
        proc.start()
    start.set()
    outcomes = dict(results.get(timeout=300) for _ in procs)
    for proc in procs:
        proc.join(timeout=60)
    assert outcomes == {"a": "ok", "b": "ok"}
    state, version = store.load_session_versioned("shared")
    assert version == 80
    assert sorted(state["events"]) == sorted(f"{w}-{i}" for w in "ab" for i in range(40))
    for writer in "ab":  # each process's own order survives the interleaving
        own = [e for e in state["events"] if e.startswith(writer)]
        assert own == [f"{writer}-{i}" for i in range(40)]
    assert len(store.profile("alice")["liked"]) == 80 and len(store.feedback("shared")) == 80


def test_a_newer_schema_is_refused_with_the_fix(store, url):
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO schema_version VALUES ({CURRENT_VERSION + 1}, 'from the future', 0)")
    with pytest.raises(StorageError, match=rf"schema version {CURRENT_VERSION + 1}, newer .* Fix: upgrade Marquee"):
        Storage(url)


FIRST_RELEASE_SCHEMA = """
CREATE TABLE users (user_id TEXT PRIMARY KEY, created_at REAL NOT NULL);
CREATE TABLE sessions (session_id TEXT PRIMARY KEY, user_id TEXT, state TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')), content TEXT NOT NULL, items TEXT, created_at REAL NOT NULL);
CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL, user_id TEXT,
    item_id TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('like', 'dislike', 'seen')), created_at REAL NOT NULL);
INSERT INTO sessions VALUES ('old', '4242', '{"genres": ["Drama"]}', 1.0);
INSERT INTO messages(session_id, role, content, items, created_at) VALUES ('old', 'user', 'dramas', NULL, 1.0);
INSERT INTO feedback(session_id, user_id, item_id, kind, created_at) VALUES ('old', '4242', '50', 'like', 1.0);
"""


def test_a_first_release_database_is_adopted_and_its_claimed_profiles_set_aside(tmp_path):
    path = tmp_path / "marquee.db"
    legacy = sqlite3.connect(path)
    legacy.executescript(FIRST_RELEASE_SCHEMA)
    legacy.close()
    store = Storage(path)
    assert store.load_session_versioned("old") == ({"genres": ["Drama"]}, 0)
    assert [m["content"] for m in store.messages("old")] == ["dramas"]
    assert store.feedback("old") == [("50", "like")]  # the event stays with its session …
    assert store.profile("4242") == {"liked": [], "disliked": [], "seen": []}  # … but no longer opens a profile
    raw = sqlite3.connect(path).execute("SELECT user_id, claimed_user FROM feedback").fetchall()
    assert raw == [(None, "4242")]
    store.commit("old", lambda stored, version: {**stored, "turns": 1})
    assert store.load_session_versioned("old") == ({"genres": ["Drama"], "turns": 1}, 1)
    store.close()


@pytest.mark.parametrize("bad", ["mysql://root@localhost/marquee", "sqlite://", "not a url://x"])
def test_unsupported_urls_are_explained(bad):
    with pytest.raises(StorageError, match="sqlite:///PATH"):
        Storage(bad)


def test_an_unreachable_server_is_a_clear_error():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StorageError, match=r"cannot use the session database postgresql://marquee:\*\*\*@127\.0\.0\.1"
                                           r".*Fix: start the database server"):
        Storage(f"postgresql://marquee:secret@127.0.0.1:{port}/marquee", connect_timeout=2)


def test_the_password_never_appears_in_messages(url):
    from sqlalchemy.engine import make_url

    store = Storage(url)
    password = make_url(url).password
    assert not password or (password not in store.location and ":***@" in store.location)
    store.close()
