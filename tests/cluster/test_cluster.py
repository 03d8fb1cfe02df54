"""Scale-out through the real pieces, started by `scripts/cluster.sh` (PostgreSQL, a Chroma server, two
`marquee serve` replicas, nginx) on 127.0.0.1: shared conversations, concurrent users through the load
balancer, a replica killed with -9 mid-run and restarted, the index built once into the Chroma server."""
from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
from gradio_client import Client

from agent.storage import Storage
from benchmarks.cluster import Ledger, User, simulate
from benchmarks.cluster_driver import MISSING_PACKAGE, Cluster, ClusterError

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
SERVICES = ["postgres", "chroma", "replica1", "replica2", "lb"]


def start(directory: Path, env: dict, only: tuple[str, ...] = ()) -> Cluster:
    cluster = Cluster(directory, only=only, env=env)
    try:
        return cluster.__enter__()
    except ClusterError as exc:
        if exc.code == MISSING_PACKAGE:  # `make test` installs them (scripts/services_deps.sh)
            pytest.skip(f"a Debian package the cluster needs is not installed here: {exc}")
        raise


@pytest.fixture(scope="module")
def cluster_env(shared_home, tmp_path_factory) -> dict:
    # The replicas share the test session's MARQUEE_HOME (converted model, caches); the LLM reranker is off and
    # explanations are templates, so that a turn takes a fraction of a second on 2 cores: this is about the
    # pieces around the agent (tests/agent and tests/llm cover the agent itself).
    return {"MARQUEE_HOME": str(shared_home), "MARQUEE_AGENT__RERANK": "false", "MARQUEE_AGENT__EXPLAIN": "template",
            "MARQUEE_CONFIG": str(tmp_path_factory.mktemp("no-config") / "absent.toml")}


@pytest.fixture(scope="module")
def cluster(cluster_env, tmp_path_factory):
    running = start(tmp_path_factory.mktemp("cluster"), cluster_env)
    yield running
    running.__exit__(None, None, None)


@pytest.fixture(scope="module")
def sessions_db(cluster):
    store = Storage(cluster.urls["postgres"])
    yield store
    store.close()


def client(url: str) -> Client:
    return Client(url, verbose=False, download_files=False)


def listening(port: int) -> set[str]:
    """Local addresses listening on `port` (hex, as /proc/net/tcp{,6} write them; 0100007F = 127.0.0.1)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_up_prints_each_service_and_everything_listens_on_loopback_only(cluster):
    assert list(cluster.urls) == SERVICES
    assert cluster.urls["postgres"].startswith("postgresql://marquee:")
    for name, url in cluster.urls.items():
        host_port = url.rsplit("@", 1)[-1].split("//")[-1].split("/")[0]
        host, port = host_port.rsplit(":", 1)
        assert host == "127.0.0.1", url
        assert listening(int(port)) == {"0100007F"}, f"{name} listens on {listening(int(port))}"
        assert cluster.alive(name)


def test_the_index_is_built_once_into_the_chroma_server_and_both_replicas_read_it(cluster):
    import chromadb

    host, port = cluster.urls["chroma"].removeprefix("http://").split(":")
    server = chromadb.HttpClient(host=host, port=int(port))
    collections = [c for c in server.list_collections() if c.name.startswith("marquee-items.v")]
    assert len(collections) == 1 and collections[0].count() == 1682
    index_log = cluster.log("index")
    assert index_log.count("embedded 1682") == 1
    for replica in ("replica1", "replica2"):
        assert "indexing" not in cluster.log(replica).lower()  # nothing built at a replica's start
    one, two = (client(cluster.urls[r]).predict("a prison escape story", f"idx-{uuid.uuid4().hex[:6]}",
                                                api_name="/chat") for r in ("replica1", "replica2"))
    assert one["items"] and [i["item_id"] for i in one["items"]] == [i["item_id"] for i in two["items"]]


def test_a_conversation_alternating_between_the_replicas_keeps_its_state(cluster, sessions_db):
    one, two = client(cluster.urls["replica1"]), client(cluster.urls["replica2"])
    sid = f"alt-{uuid.uuid4().hex[:8]}"
    first = one.predict("sci-fi and action films", sid, api_name="/chat")["items"]
    assert first and all({"Sci-Fi", "Action"} & set(i["genres"]) for i in first)
    two.predict(sid, first[0]["item_id"], "like", api_name="/feedback")
    older = two.predict("something older", sid, api_name="/chat")["items"]
    oldest = min(i["year"] for i in first)
    assert older and all(i["year"] < oldest for i in older)
    no_war = one.predict("no war films", sid, api_name="/chat")["items"]
    assert no_war and all("War" not in i["genres"] and i["year"] < oldest for i in no_war)
    two.predict(sid, no_war[0]["item_id"], "seen", api_name="/feedback")
    streamed = list(two.submit("2 more", sid, api_name="/chat_stream"))  # streamed over SSE: text first, then the items
    assert len(streamed) >= 2 and streamed[-1]["items"] and not streamed[0]["items"]
    state = one.predict(sid, api_name="/preferences")
    assert {"Sci-Fi", "Action"} <= set(state["genres"]) and state["exclude_genres"] == ["War"]
    assert state["year_max"] is not None and state["year_max"] < oldest and state["turns"] == 4
    assert [d["item_id"] for d in state["liked"]] == [first[0]["item_id"]]
    assert [d["item_id"] for d in state["seen"]] == [no_war[0]["item_id"]]
    shown = [i["item_id"] for reply in (first, older, no_war, streamed[-1]["items"]) for i in reply]
    assert len(shown) == len(set(shown)) == state["shown"]  # no title twice, whichever replica answered
    assert len(sessions_db.messages(f"api:{sid}")) == 8


def test_ten_concurrent_users_through_nginx_see_no_errors_and_no_cross_talk(cluster, sessions_db):
    ledgers = simulate(cluster.urls["lb"], users=10, conversations=1, turns=3)
    assert [e for ledger in ledgers for e in ledger.errors] == []
    assert [c for ledger in ledgers for c in ledger.cross_talk] == []
    for ledger in ledgers:
        (sid, record), = ledger.sessions.items()
        stored = sessions_db.load_session(f"api:{sid}")
        assert record["turns"] == 3 and stored["turns"] == 3 and stored["genres"] == [record["genre"]]
    streamed = list(client(cluster.urls["lb"]).submit("westerns", f"lb-{uuid.uuid4().hex[:6]}",
                                                      api_name="/chat_stream"))
    assert len(streamed) >= 2 and streamed[-1]["items"]  # the reply streams through nginx (SSE unbuffered)


def test_a_replica_killed_mid_run_loses_no_state_the_other_serves_and_a_restart_resumes(cluster, sessions_db):
    from concurrent.futures import ThreadPoolExecutor

    victim = f"victim-{uuid.uuid4().hex[:6]}"
    direct = client(cluster.urls["replica1"])
    direct.predict(victim, {"genres": ["Comedy"], "count": 3}, api_name="/set_preferences")
    direct.predict("more please", victim, api_name="/chat")

    # 1. six users talk through nginx; once they are under way, replica1 dies with kill -9 while streaming a
    #    turn. A call the crash cuts is retried on a new connection, and nginx sends it to the other replica.
    lock, turns_done, under_way = threading.Lock(), [0], threading.Event()

    def count(user, sid) -> None:
        with lock:
            turns_done[0] += 1
            if turns_done[0] >= 6:
                under_way.set()

    with ThreadPoolExecutor(1) as runner:
        load = runner.submit(simulate, cluster.urls["lb"], users=6, conversations=1, turns=4, retries=2,
                             on_turn=count)
        assert under_way.wait(timeout=600), load.exception() if load.done() else "no user got going"
        before, version = sessions_db.load_session_versioned(f"api:{victim}")
        job = direct.submit("something older", victim, api_name="/chat_stream")
        next(iter(job))  # the first streamed words of the reply …
        old_pid = cluster.kill("replica1")  # … and the replica dies
        ledgers = load.result(timeout=900)

    # the turn in flight is stored whole or not at all; what was committed before is all there
    after, after_version = sessions_db.load_session_versioned(f"api:{victim}")
    assert (after_version, after["turns"]) in ((version, before["turns"]), (version + 1, before["turns"] + 1))
    assert after["genres"] == ["Comedy"] and len(sessions_db.messages(f"api:{victim}")) == 2 * after["turns"]
    # every user finished; nothing a user saw confirmed is missing from the store
    assert not cluster.alive("replica1") and turns_done[0] >= 24
    assert [c for ledger in ledgers for c in ledger.cross_talk] == []
    for ledger in ledgers:
        (sid, record), = ledger.sessions.items()
        stored = sessions_db.load_session(f"api:{sid}")
        assert record["turns"] == 4 and stored["turns"] >= 4 and stored["genres"] == [record["genre"]]
        assert set(record["liked"]) <= set(stored["liked"])

    # 3. `up` restarts just replica1 (same port, the index is not rebuilt); a live session's next turn there
    #    sees everything it had
    others = {name: cluster.pid(name) for name in SERVICES if name != "replica1"}
    cluster.up()
    assert cluster.pid("replica1") != old_pid and cluster.alive("replica1")
    assert {name: cluster.pid(name) for name in others} == others
    assert cluster.log("index").count("embedded 1682") == 1 and "is up to date" in cluster.log("index")
    (sid, record), = ledgers[0].sessions.items()
    stored = sessions_db.load_session(f"api:{sid}")
    restarted = client(cluster.urls["replica1"])
    seen = restarted.predict(sid, api_name="/preferences")
    assert seen["genres"] == [record["genre"]] and seen["turns"] == stored["turns"]
    assert {d["item_id"] for d in seen["liked"]} == set(stored["liked"])
    reply = restarted.predict("more please", sid, api_name="/chat")["items"]
    assert reply and not {i["item_id"] for i in reply} & set(stored["shown"])
    assert all(record["genre"] in i["genres"] for i in reply)


def test_up_is_idempotent_and_down_stops_exactly_what_up_started(cluster_env, tmp_path):
    import subprocess
    import sys

    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        small = start(tmp_path / "small", cluster_env, only=("postgres", "chroma"))
        pids = {name: small.pid(name) for name in ("postgres", "chroma")}
        assert small.up() == small.urls and {name: small.pid(name) for name in pids} == pids  # nothing restarted
        small.down()
        assert not any(small.alive(name) for name in pids)
        for pid in pids.values():
            assert not Path(f"/proc/{pid}").exists()
        assert bystander.poll() is None  # a process `up` did not start is left alone
        assert (tmp_path / "small" / "postgres.password").exists()  # data survive `down`; --purge deletes them
        small.down(purge=True)
        assert not (tmp_path / "small").exists()
    finally:
        bystander.kill()
        bystander.wait()
