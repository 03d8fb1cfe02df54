"""Several agents over one database, as `marquee serve` replicas behind a load balancer run them (both back ends):
a conversation alternating between them keeps its state, a change committed by one during the other's turn is
merged rather than overwritten, two processes writing one session lose nothing. And who owns a profile: the
caller's account, never a user claimed in a message."""
from __future__ import annotations

import multiprocessing
import uuid

import pytest

from agent.core import RecommenderAgent
from agent.session import SessionState, merge
from agent.storage import Storage


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def replicas(agent, agent_settings, db_url):
    """Two agents with their own database connections (engines) over the same database."""
    pair = [RecommenderAgent(agent_settings, service=agent.service, storage=Storage(db_url)) for _ in range(2)]
    yield pair
    for replica in pair:
        replica.storage.close()


def test_a_conversation_alternating_between_replicas_keeps_its_state(replicas, sid):
    one, two = replicas
    first = one.chat("sci-fi from the 80s", session_id=sid)
    assert first.items and all("Sci-Fi" in i.genres and 1980 <= i.year <= 1989 for i in first.items)
    two.feedback(sid, first.items[0].item_id, liked=True)
    second = two.chat("no war films", session_id=sid)
    assert all("War" not in i.genres and "Sci-Fi" in i.genres for i in second.items)
    older = one.chat("something older", session_id=sid)
    oldest = min(i.year for i in first.items + second.items)
    assert older.items and all(i.year < oldest for i in older.items)
    state = two.get_state(sid)
    assert state["genres"] == ["Sci-Fi"] and state["exclude_genres"] == ["War"] and state["turns"] == 3
    assert [d["item_id"] for d in state["liked"]] == [first.items[0].item_id]
    shown = [i.item_id for r in (first, second, older) for i in r.items]
    assert len(shown) == len(set(shown)) == state["shown"]  # nothing shown twice across replicas
    assert [m["role"] for m in one.history(sid)] == ["user", "assistant"] * 3


def test_a_change_committed_by_another_replica_during_a_turn_is_merged(replicas, sid):
    one, two = replicas
    start = one.chat("comedies", session_id=sid)
    stream = one.stream("from the 90s", session_id=sid)
    first = next(stream)  # replica one has read the session and is streaming its reply …
    assert first.kind == "text"
    two.feedback(sid, start.items[0].item_id, liked=False)  # … while replica two commits feedback
    two.set_preferences(sid, count=3)                        # … and a preference change
    events = [first, *stream]
    assert events[-1].kind == "items"
    state = two.get_state(sid)
    assert state["genres"] == ["Comedy"] and (state["year_min"], state["year_max"]) == (1990, 1999)  # the turn
    assert [d["item_id"] for d in state["disliked"]] == [start.items[0].item_id]                    # the feedback
    assert state["count"] == 3 and state["turns"] == 2                                              # the edit
    assert state["shown"] == len(start.items) + len(events[-1].items)
    assert one.storage.feedback(sid) == [(start.items[0].item_id, "dislike")]
    assert len(one.chat("more", session_id=sid).items) == 3


def test_merge_keeps_both_sides_and_the_latest_opinion():
    base = SessionState(session_id="s", genres=["Drama"], liked=["1"], shown=["1", "2"], turns=2)
    ours = base.model_copy(deep=True)
    ours.genres, ours.year_min, ours.year_max = ["Horror"], 1980, 1989
    ours.mark("3", "dislike")
    ours.record_shown(["4"])
    theirs = base.model_copy(deep=True)
    theirs.mark("3", "like")
    theirs.mark("5", "seen")
    theirs.count = 3
    merged = merge(base, ours, theirs)
    assert merged.genres == ["Horror"] and (merged.year_min, merged.year_max) == (1980, 1989)
    assert merged.count == 3 and merged.seen == ["5"] and merged.turns == 3
    assert merged.liked == ["1"] and merged.disliked == ["3"]  # ours committed last: its opinion of 3 wins
    assert merged.shown == ["1", "2", "4"] and merged.last_shown == ["4"]


def _replica_process(home: str, url: str, sid: str, name: str, items: list[str], start, results) -> None:
    """One replica in its own process: turns, feedback and a preference edit on the shared session."""
    from retrieval.config import Settings

    try:
        settings = Settings.load(home=home, agent={"rerank": False, "explain": "template"}, storage={"url": url})
        agent = RecommenderAgent(settings)
        agent.get_state(sid)  # loads what a turn needs before the race starts
        start.wait()
        for n, item_id in enumerate(items):
            agent.feedback(sid, item_id, liked=name == "a")
            if n % 4 == 0:
                agent.chat("more please", session_id=sid)
        if name == "a":
            agent.set_preferences(sid, year_min=1970)
        else:
            agent.set_preferences(sid, count=4)
        results.put((name, "ok"))
    except Exception as exc:  # noqa: BLE001 — reported to the parent
        results.put((name, repr(exc)))


def test_two_processes_on_one_session_lose_no_feedback_or_preference(agent, shared_home, postgres_url, sid):
    """Two replica processes over PostgreSQL (SQLite's two-process case: tests/agent/test_storage.py)."""
    db_url = postgres_url
    seed = RecommenderAgent(agent.settings, service=agent.service, storage=Storage(db_url))
    seed.chat("westerns", session_id=sid)
    ids = agent.catalog.item_ids
    liked, disliked = list(ids[100:112]), list(ids[200:212])
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_replica_process, args=(str(shared_home), db_url, sid, name, items, start, results))
             for name, items in (("a", liked), ("b", disliked))]
    for proc in procs:
        proc.start()
    start.set()
    outcomes = dict(results.get(timeout=600) for _ in procs)
    for proc in procs:
        proc.join(timeout=60)
    assert outcomes == {"a": "ok", "b": "ok"}
    state = seed.get_state(sid)
    assert sorted(d["item_id"] for d in state["liked"]) == sorted(liked)
    assert sorted(d["item_id"] for d in state["disliked"]) == sorted(disliked)
    assert state["year_min"] == 1970 and state["count"] == 4 and state["genres"] == ["Western"]
    assert state["turns"] == 1 + 2 * 3  # every turn of both processes counted
    assert len(seed.storage.feedback(sid)) == 24
    seed.storage.close()


# ------------------------------------------------------------------------------------------ profiles
def _like_first_four(agent, sid, message, account=None):
    reply = agent.chat(message, session_id=sid, account=account)
    for item in reply.items[:4]:
        agent.feedback(sid, item.item_id, liked=True, account=account)
    return [i.item_id for i in reply.items[:4]]


def _ids(reply) -> list[str]:
    return [i.item_id for i in reply.items]


def test_a_user_claimed_in_a_message_never_writes_or_reads_a_profile(agent):
    """Without sign-in, "I am user 4242" is this session's only: the four likes stay in it; a later session
    claiming 4242 gets exactly what one claiming 5353 gets."""
    run = uuid.uuid4().hex[:6]
    liked = _like_first_four(agent, f"a-{run}", "I am user 4242, comedies")
    assert agent.storage.profile("4242") == {"liked": [], "disliked": [], "seen": []}
    as_4242 = agent.chat("I am user 4242, comedies", session_id=f"b-{run}")
    as_5353 = agent.chat("I am user 5353, comedies", session_id=f"c-{run}")
    assert _ids(as_4242) == _ids(as_5353)
    assert set(liked) <= set(_ids(as_4242))  # the other session's likes are not this user's
    assert "no viewing history" in as_4242.text and "shapes this conversation" in as_4242.text


def test_a_signed_in_account_owns_its_profile(agent):
    """With sign-in (the web page's --auth user), the likes go to the account: a fresh session of the same
    account gets them (liked films are not offered again), another account claiming 4242 does not."""
    run = uuid.uuid4().hex[:6]
    alice, bob = f"alice-{run}", f"bob-{run}"
    liked = _like_first_four(agent, f"a-{run}", "I am user 4242, comedies", account=alice)
    assert sorted(agent.storage.profile(alice)["liked"]) == sorted(liked)
    assert agent.storage.profile("4242")["liked"] == []
    again = agent.chat("comedies", session_id=f"b-{run}", account=alice)
    assert again.items and not set(liked) & set(_ids(again))
    other = agent.chat("I am user 4242, comedies", session_id=f"c-{run}", account=bob)
    assert set(liked) <= set(_ids(other))
    assert agent.get_state(f"b-{run}")["liked"] == []  # the profile shapes picks; the session's own state is new


CRASH_MID_TURN = """
import os, signal, sys
from agent.core import RecommenderAgent
from retrieval.config import Settings

settings = Settings.load(home=sys.argv[1], agent={"rerank": False, "explain": "template"}, storage={"url": sys.argv[2]})
agent = RecommenderAgent(settings)
agent.chat("westerns", session_id="crash")
agent.feedback("crash", agent.chat("more please", session_id="crash").items[0].item_id, liked=True)
print("committed", flush=True)
for event in agent.stream("something older", session_id="crash"):
    os.kill(os.getpid(), signal.SIGKILL)  # kill -9 after the first streamed words of the third turn
"""


def test_a_process_killed_mid_turn_keeps_every_committed_turn(agent, shared_home, db_url):
    """kill -9 during a turn (SQLite: WAL; PostgreSQL: the server): the database opens clean, with the two
    committed turns and the like, and without any part of the interrupted one. (A `marquee serve` replica killed
    mid-turn: tests/cluster/test_cluster.py.)"""
    import signal
    import subprocess
    import sys

    agent.service.ensure_index(progress=False)
    run = subprocess.run([sys.executable, "-c", CRASH_MID_TURN, str(shared_home), db_url], capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == -signal.SIGKILL and "committed" in run.stdout, run.stderr[-2000:]
    store = Storage(db_url)  # opening runs the integrity check (SQLite: quick_check)
    try:
        state, version = store.load_session_versioned("crash")
        assert state["turns"] == 2 and state["genres"] == ["Western"] and len(state["liked"]) == 1
        assert version == 3  # two turns and one feedback: nothing of the third turn
        assert [m["role"] for m in store.messages("crash")] == ["user", "assistant"] * 2
        assert store.feedback("crash") == [(state["liked"][0], "like")]
    finally:
        store.close()
