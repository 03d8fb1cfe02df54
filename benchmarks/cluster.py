"""Scale-out under load (`marquee bench cluster [--quick]`): 10 gradio_client users for 2 minutes (30 s with
--quick) through nginx and two replicas sharing PostgreSQL and a Chroma server (scripts/cluster.sh), beside the
same load on ONE replica with PostgreSQL and on one replica with SQLite; then a replica restart.

Each simulated user holds conversations of a few turns: it sets its own genre (/set_preferences), asks for more,
likes one pick per turn, and checks what it gets: every pick has its genre and is new in the conversation, and
at the end the session's stored preferences hold its genre and every like it made (else: cross-talk). Then it
starts a new conversation, until the time is up. Replica restart: a live session's full state (genre, likes,
turns) must be what the next turn on the restarted replica sees.

The cluster runs in a temporary folder with MARQUEE_HOME as configured (the converted model, caches) and the
configuration's agent settings (the LLM reranker as shipped). The tests drive the same users
(tests/cluster/test_cluster.py).
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

TARGETS = {"lb.errors": "0", "lb.cross_talk": "0", "restart.state_kept": "true"}
USER_GENRES = ["Comedy", "Drama", "Horror", "Western", "Romance", "Thriller", "Crime", "Children's", "Musical",
               "Adventure"]
FOLLOW_UPS = ["something good", "more please", "another few", "what else?"]
PICKS = 3


@dataclass
class Ledger:
    """What one simulated user saw confirmed, per session: the store must hold at least this."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cross_talk: list[str] = field(default_factory=list)
    sessions: dict[str, dict] = field(default_factory=dict)  # sid -> {"genre", "turns", "liked"}


class User:
    """A gradio_client user that reconnects (a fresh Client) after a failed call, up to `retries` times."""

    def __init__(self, url: str, index: int, ledger: Ledger, retries: int = 0, auth: tuple[str, str] | None = None):
        self.url, self.index, self.ledger, self.retries, self.auth = url, index, ledger, retries, auth
        self.genre = USER_GENRES[index % len(USER_GENRES)]
        self.client = None

    def call(self, *args, api_name: str):
        from gradio_client import Client

        for attempt in range(self.retries + 1):
            try:
                if self.client is None:
                    self.client = Client(self.url, auth=self.auth, verbose=False, download_files=False)
                return self.client.predict(*args, api_name=api_name)
            except Exception as err:  # noqa: BLE001 — every failure is recorded
                self.client = None
                self.ledger.errors.append(f"user {self.index} {api_name} (try {attempt + 1}): "
                                          f"{type(err).__name__}: {str(err)[:200]}")
                if attempt == self.retries:
                    raise
        raise AssertionError("unreachable")

    def conversation(self, turns: int, deadline: float, on_turn=None) -> None:
        sid = f"load-{self.index}-{uuid.uuid4().hex[:8]}"
        record = self.ledger.sessions[sid] = {"genre": self.genre, "turns": 0, "liked": []}
        self.call(sid, {"genres": [self.genre], "year_min": None, "year_max": None, "count": PICKS},
                  api_name="/set_preferences")
        seen: set[str] = set()
        for turn in range(turns):
            if time.monotonic() > deadline:
                break
            t0 = time.perf_counter()
            reply = self.call(FOLLOW_UPS[turn % len(FOLLOW_UPS)], sid, api_name="/chat")
            self.ledger.latencies_ms.append((time.perf_counter() - t0) * 1000)
            record["turns"] += 1
            for item in reply["items"]:
                if self.genre not in item["genres"]:
                    self.ledger.cross_talk.append(f"user {self.index} ({self.genre}) got {item['title']} "
                                                  f"{item['genres']}")
                if item["item_id"] in seen:
                    self.ledger.cross_talk.append(f"user {self.index} got {item['title']} twice in {sid}")
                seen.add(item["item_id"])
            if reply["items"]:
                self.call(sid, reply["items"][0]["item_id"], "like", api_name="/feedback")
                record["liked"].append(reply["items"][0]["item_id"])
            if on_turn is not None:
                on_turn(self, sid)
        final = self.call(sid, api_name="/preferences")
        if final["genres"] != [self.genre]:
            self.ledger.cross_talk.append(f"user {self.index}: {sid} preferences became {final['genres']}")
        missing = set(record["liked"]) - {d["item_id"] for d in final["liked"]}
        if missing:
            self.ledger.cross_talk.append(f"user {self.index}: {sid} lost likes {sorted(missing)}")


def simulate(url: str, users: int, seconds: float | None = None, conversations: int = 1, turns: int = 4,
             retries: int = 0, on_turn=None, auth=None) -> list[Ledger]:
    """`users` concurrent users: for `seconds` (whole conversations until the time is up), else `conversations`
    each; returns every user's ledger."""
    deadline = time.monotonic() + (seconds if seconds is not None else 3600)

    def one(index: int) -> Ledger:
        ledger = Ledger()
        user = User(url, index, ledger, retries=retries, auth=auth)
        done = 0
        while time.monotonic() < deadline and (seconds is not None or done < conversations):
            try:
                user.conversation(turns, deadline, on_turn)
            except Exception:  # noqa: BLE001 — recorded in the ledger by User.call; the next conversation goes on
                pass
            done += 1
        return ledger

    with ThreadPoolExecutor(max_workers=users) as pool:
        return list(pool.map(one, range(users)))


def summary(ledgers: list[Ledger], wall_s: float) -> dict:
    latencies = sorted(ms for ledger in ledgers for ms in ledger.latencies_ms)
    errors = [e for ledger in ledgers for e in ledger.errors]
    cross = [c for ledger in ledgers for c in ledger.cross_talk]
    p95 = latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))] if latencies else None
    return {"users": len(ledgers), "turns": len(latencies), "wall_s": round(wall_s, 1),
            "turns_per_s": round(len(latencies) / wall_s, 2) if wall_s else None,
            "turn_ms": {"p50": round(statistics.median(latencies), 1), "p95": round(p95, 1),
                        "max": round(latencies[-1], 1)} if latencies else {},
            "errors": len(errors), "error_examples": errors[:3],
            "cross_talk": len(cross), "cross_talk_examples": cross[:3]}


def measure(url: str, users: int, seconds: float) -> dict:
    t0 = time.perf_counter()
    ledgers = simulate(url, users, seconds=seconds)
    return summary(ledgers, time.perf_counter() - t0)


def replicas_served(cluster) -> dict[str, int]:
    """Queue joins per replica in nginx's access log (which replica ran each turn)."""
    ports = {cluster.urls[name].rsplit(":", 1)[1].strip("/"): name for name in ("replica1", "replica2")}
    counts = {name: 0 for name in ports.values()}
    log = cluster.dir / "nginx" / "access.log"
    for line in log.read_text().splitlines() if log.exists() else []:
        if "/queue/join" in line and "upstream=" in line:
            port = line.split("upstream=", 1)[1].split()[0].rsplit(":", 1)[-1]
            if port in ports:
                counts[ports[port]] += 1
    return counts


def restart_check(cluster) -> dict:
    """A live session on replica1; kill -9 replica1; `up` restarts it; its next turn sees the full state."""
    from gradio_client import Client

    ledger = Ledger()
    user = User(cluster.urls["replica1"], 0, ledger)
    user.conversation(turns=2, deadline=time.monotonic() + 600)
    sid, record = next(iter(ledger.sessions.items()))
    before = user.call(sid, api_name="/preferences")
    cluster.kill("replica1")
    t0 = time.perf_counter()
    cluster.up()
    restart_s = time.perf_counter() - t0
    after_client = Client(cluster.urls["replica1"], verbose=False, download_files=False)
    seen = after_client.predict(sid, api_name="/preferences")
    reply = after_client.predict("more please", sid, api_name="/chat")
    kept = (seen == before and seen["genres"] == [record["genre"]]
            and {d["item_id"] for d in seen["liked"]} == set(record["liked"]) and seen["turns"] == record["turns"])
    fits = all(record["genre"] in item["genres"] for item in reply["items"])
    return {"state_kept": bool(kept and fits and reply["items"]), "replica_restart_s": round(restart_s, 1),
            "errors": len(ledger.errors)}


def run(quick: bool = False) -> dict:
    from benchmarks.cluster_driver import Cluster
    from benchmarks.web_driver import ServerProcess
    from retrieval.config import Settings

    settings = Settings.load()
    seconds = 30 if quick else 120
    users = 10
    figures: dict = {"config": {"users": users, "seconds": seconds, "rerank": settings.agent.rerank,
                                "explain": settings.agent.explain, "server_concurrency": settings.server.concurrency}}
    folder = tempfile.mkdtemp(prefix="marquee-bench-cluster-")
    env = {"MARQUEE_HOME": str(settings.home)}
    with Cluster(folder, env=env) as cluster:
        t0 = time.perf_counter()
        figures["lb"] = {**measure(cluster.urls["lb"], users, seconds), "replicas": replicas_served(cluster),
                         "storage": "postgresql", "behind": "nginx, 2 replicas"}
        figures["one_replica_postgresql"] = {**measure(cluster.urls["replica1"], users, seconds),
                                             "storage": "postgresql"}
        sqlite_home = os.path.join(folder, "sqlite")
        os.makedirs(sqlite_home)
        sqlite_env = {"MARQUEE_STORAGE__URL": f"sqlite:///{sqlite_home}/marquee.db",
                      "MARQUEE_CHROMA_URL": cluster.urls["chroma"]}
        with ServerProcess(settings.home, env=sqlite_env, log_path=cluster.dir / "sqlite-replica.log") as server:
            figures["one_replica_sqlite"] = {**measure(server.url, users, seconds), "storage": "sqlite"}
        figures["restart"] = restart_check(cluster)
        figures["load_wall_s"] = round(time.perf_counter() - t0, 1)
    return figures


if __name__ == "__main__":  # python -m benchmarks.cluster [--quick] [--out DIR]
    from benchmarks.cli import main

    main("cluster")
