"""Session locks: bounded waits, abandoned streams, no leaks; session states come from the database.

No test measures time: waits are made short through the settings and the assertions are on outcomes
(which request got the session, what was committed, what is left in memory).
"""
from __future__ import annotations

import threading
import uuid

import pytest

from agent.session_locks import SessionBusyError, SessionLocks

# ------------------------------------------------------------------------------------- the lock itself


def test_one_holder_at_a_time_and_waiters_get_it_in_turn():
    locks = SessionLocks(wait_s=30, lease_s=30)
    order = []

    def second():
        with locks.hold("s"):
            order.append("second")

    with locks.hold("s"):
        worker = threading.Thread(target=second)
        worker.start()
        order.append("first")
    worker.join()
    assert order == ["first", "second"] and len(locks) == 0


def test_a_running_holder_makes_others_fail_with_busy_after_the_wait():
    locks = SessionLocks(wait_s=0.2, lease_s=30)
    with locks.hold("s"):
        with pytest.raises(SessionBusyError, match="this session is busy"):
            with locks.hold("s"):
                pass
        with locks.hold("other"):  # other sessions are not affected
            pass
    assert len(locks) == 0


def test_a_paused_holder_is_taken_over_and_cannot_resume():
    locks = SessionLocks(wait_s=30, lease_s=0.1)
    holding = locks.hold("s")
    token = holding.__enter__()
    locks.pause("s", token)  # a stream stopped at a yield; nobody pulls it
    with locks.hold("s"):  # waits for the lease, then takes over (no hang)
        pass
    with pytest.raises(SessionBusyError, match="was not saved"):
        locks.resume("s", token)
    holding.__exit__(None, None, None)  # the abandoned stream finally closes: nothing to release, no error
    assert len(locks) == 0


def test_a_resumed_holder_is_not_taken_over():
    locks = SessionLocks(wait_s=0.3, lease_s=0.05)
    with locks.hold("s") as token:
        locks.pause("s", token)
        locks.resume("s", token)  # consumed again before anyone waited: it keeps running
        with pytest.raises(SessionBusyError, match="busy"):
            with locks.hold("s"):
                pass
        locks.resume("s", token)  # still the owner


def test_entries_exist_only_while_held_so_many_sessions_leave_nothing():
    locks = SessionLocks()
    for n in range(2000):
        with locks.hold(f"s{n}"):
            pass
    assert len(locks) == 0


# ------------------------------------------------------------------------------------- in the agent


@pytest.fixture
def short_locks(agent, monkeypatch):
    monkeypatch.setattr(agent, "_locks", SessionLocks(wait_s=0.5, lease_s=0.2))
    return agent._locks


def test_a_paused_stream_does_not_block_its_session(agent, sid, short_locks):
    """Finding: a paused `stream()` held its session lock with no timeout. Now a request that comes after
    the pause lease takes over; the abandoned turn is never committed."""
    agent.chat("westerns", session_id=sid)
    stream = agent.stream("no westerns, comedies instead", session_id=sid)
    next(stream)  # the consumer reads the first delta, then walks away without closing
    state = agent.set_preferences(sid, year_min=1980)  # does not hang
    assert state["genres"] == ["Western"] and state["year_min"] == 1980
    with pytest.raises(SessionBusyError, match="not saved"):
        list(stream)
    after = agent.get_state(sid)
    assert after["genres"] == ["Western"] and after["turns"] == 1 and after["year_min"] == 1980
    assert len(short_locks) == 0
    assert [m["role"] for m in agent.history(sid)] == ["user", "assistant"]  # only the first turn was stored


def test_a_stream_left_after_its_last_event_does_not_block_its_session(agent, sid, short_locks):
    stream = agent.stream("westerns", session_id=sid)
    while next(stream).kind != "items":  # read up to the reply, then stop without exhausting or closing
        pass
    assert agent.get_state(sid)["genres"] == ["Western"]  # committed; the session is free after the lease
    assert list(stream) == [] and len(short_locks) == 0  # finishing it later is fine: nothing to undo


def test_a_running_turn_makes_a_second_request_of_its_session_fail_clearly(agent, sid, short_locks, monkeypatch):
    started, release = threading.Event(), threading.Event()
    original = agent.pipeline.understand

    def slow_understand(turn):  # the turn is running (not paused at a yield) while this waits
        started.set()
        release.wait(60)
        return original(turn)

    monkeypatch.setattr(agent.pipeline, "understand", slow_understand)
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("reply", agent.chat("thrillers", session_id=sid)))
    worker.start()
    try:
        assert started.wait(60)
        with pytest.raises(SessionBusyError, match="this session is busy"):
            agent.get_state(sid)
        assert agent.get_state(f"{sid}-other")["turns"] == 0  # other sessions are served meanwhile
    finally:
        release.set()
        worker.join()
    assert result["reply"].items and agent.get_state(sid)["genres"] == ["Thriller"]


def test_many_sessions_leave_no_memory_behind_and_each_comes_back_from_the_database(agent):
    sessions = [f"many-{uuid.uuid4().hex[:8]}-{n}" for n in range(6)]
    genres = ["Comedy", "Drama", "Horror", "Western", "Romance", "Thriller"]
    for sid, genre in zip(sessions, genres):
        agent.set_preferences(sid, genres=[genre])
    assert agent.stats() == {"sessions_locked": 0}
    assert agent.get_state(sessions[0])["genres"] == ["Comedy"]
    reply = agent.chat("something from the 90s", session_id=sessions[1])
    assert reply.items and all("Drama" in i.genres for i in reply.items)
    assert len(agent._locks) == 0
