"""Hours of use compressed into minutes (`marquee bench soak [--minutes N] [--quick]`).

Starts the real `marquee serve` on a free 127.0.0.1 port (MARQUEE_HOME as configured; the first run there
builds the index; sessions are read from the database on every call), then lets 10 simulated users talk to it through `gradio_client`
until the time is up. Each user has its own genre and works in cycles: a fresh session, preferences set,
five /chat turns, a like, a /preferences check, a /reset; then the next session. Measured:
  * errors: any failed call; cross_talk: an item without the user's genre, an item twice in one session,
    preferences that are not the user's own;
  * turn_ms: /chat latency percentiles;
  * rss_mb: the server's resident memory after the warm-up (the first `WARMUP_SHARE` of the run), at the
    end and the largest seen, sampled every `RSS_EVERY_S`; growth = end − after warm-up;
  * stats: the server's own bookkeeping at the end (`/stats`: sessions whose lock is held: 0 once idle).
"""
from __future__ import annotations

import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.web import USER_GENRES, summary

TARGETS = {"errors": "0", "cross_talk": "0", "rss_mb.growth_after_warmup": "≤ 20",
           "stats_at_end.sessions_locked": "0"}
USERS = 10
TURNS_PER_SESSION = 5
WARMUP_SHARE = 0.2
RSS_EVERY_S = 5.0
FOLLOW_UPS = ["something good", "more please", "another few", "what else?", "any more?"]


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux /proc), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def user_loop(url: str, index: int, deadline: float) -> dict:
    """One user until the deadline; returns latencies, errors, cross-talk findings and sessions used."""
    from gradio_client import Client

    genre = USER_GENRES[index % len(USER_GENRES)]
    out = {"latencies_ms": [], "errors": [], "cross_talk": [], "sessions": 0}
    try:
        client = Client(url, verbose=False, download_files=False)
    except Exception as err:  # noqa: BLE001 — every failure is a figure here
        out["errors"].append(f"connect: {type(err).__name__}: {err}")
        return out
    cycle = 0
    while time.monotonic() < deadline:
        session = f"soak-{os.getpid()}-{index}-{cycle}"
        cycle += 1
        out["sessions"] += 1
        try:
            client.predict(session, {"genres": [genre], "year_min": None, "year_max": None, "count": 3},
                           api_name="/set_preferences")
            seen: set[str] = set()
            for turn in range(TURNS_PER_SESSION):
                if time.monotonic() >= deadline:
                    break
                t0 = time.perf_counter()
                reply = client.predict(FOLLOW_UPS[turn % len(FOLLOW_UPS)], session, api_name="/chat")
                out["latencies_ms"].append((time.perf_counter() - t0) * 1000)
                for item in reply["items"]:
                    if genre not in item["genres"]:
                        out["cross_talk"].append(f"user {index} ({genre}) got {item['title']} {item['genres']}")
                    if item["item_id"] in seen:
                        out["cross_talk"].append(f"user {index} got {item['title']} twice in {session}")
                    seen.add(item["item_id"])
                if turn == 1 and reply["items"]:
                    client.predict(session, reply["items"][0]["item_id"], "like", api_name="/feedback")
            prefs = client.predict(session, api_name="/preferences")
            if prefs["genres"] != [genre]:
                out["cross_talk"].append(f"user {index} preferences became {prefs['genres']}")
            client.predict(session, api_name="/reset")
        except Exception as err:  # noqa: BLE001
            out["errors"].append(f"{type(err).__name__}: {err}")
    return out


def soak(url: str, pid: int, minutes: float, users: int = USERS) -> dict:
    """Run `users` simulated users against a running server for `minutes`; returns the figures."""
    from gradio_client import Client

    duration = minutes * 60
    start = time.monotonic()
    deadline = start + duration
    samples: list[tuple[float, float]] = []  # (seconds since start, RSS MiB)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.monotonic() - start, rss_mb(pid)))
            stop.wait(RSS_EVERY_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with ThreadPoolExecutor(max_workers=users) as pool:
        results = list(pool.map(lambda i: user_loop(url, i, deadline), range(users)))
    wall = time.monotonic() - start
    stop.set()
    sampler.join()
    samples.append((wall, rss_mb(pid)))
    stats = Client(url, verbose=False, download_files=False).predict(api_name="/stats")
    warm = [mb for t, mb in samples if t >= WARMUP_SHARE * duration]
    latencies = [ms for r in results for ms in r["latencies_ms"]]
    errors = [e for r in results for e in r["errors"]]
    cross = [c for r in results for c in r["cross_talk"]]
    return {
        "users": users, "minutes": minutes, "turns_done": len(latencies),
        "sessions_created": sum(r["sessions"] for r in results),
        "turns_per_s": round(len(latencies) / wall, 2) if wall else 0.0,
        "errors": len(errors), "error_examples": errors[:3],
        "cross_talk": len(cross), "cross_talk_examples": cross[:3],
        "turn_ms": summary(latencies) if latencies else {},
        "rss_mb": {"at_start": round(samples[0][1], 1), "after_warmup": round(warm[0], 1),
                   "at_end": round(samples[-1][1], 1), "max": round(max(mb for _, mb in samples), 1),
                   "growth_after_warmup": round(samples[-1][1] - warm[0], 1), "samples": len(samples)},
        "stats_at_end": stats,
    }


def run(quick: bool = False, minutes: float | None = None) -> dict:
    from retrieval.config import Settings
    from benchmarks.web_driver import ServerProcess

    settings = Settings.load()
    minutes = minutes if minutes is not None else (1.0 if quick else 5.0)
    log_path = Path(tempfile.gettempdir()) / f"marquee-bench-soak-{os.getpid()}.log"
    with ServerProcess(settings.home, log_path=log_path, ready_timeout=3600) as server:
        figures = soak(server.url, server.proc.pid, minutes)
        failures = [line.strip() for line in server.lines if "Traceback" in line or " ERROR " in line]
    return {"config": {"rerank": settings.agent.rerank, "explain": settings.agent.explain,
                       "server_concurrency": settings.server.concurrency},
            **figures, "server_log_failures": len(failures), "server_log_failure_examples": failures[:3]}


if __name__ == "__main__":  # python -m benchmarks.soak [--quick] [--out DIR]
    from benchmarks.cli import main

    main("soak")
