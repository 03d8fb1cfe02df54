"""The chat page under a browser and under load (`marquee bench web [--quick]`).

Starts the real `marquee serve` on a free 127.0.0.1 port (MARQUEE_HOME as configured; the first run there
builds the index), with Debian's Chromium already running, then measures:
  * page_interactive_ms: from the server's ready line to the page's message box accepting input, in a
    fresh browser context (cold), plus warm reloads;
  * first_token_visible_ms: from pressing Enter to the first streamed reply text shown in the chat, and
    turn_complete_ms: to the cards being shown;
  * concurrent: N simulated users on loopback through `gradio_client`, each with its own session and its
    own genre (set through /set_preferences), a fixed number of /chat turns each (bounded; stops by
    itself). Cross-talk check: every item a user gets has that user's genre, nothing repeats within a
    session, and each session's preferences still hold only its own genre at the end.
Explanations follow the configuration (MARQUEE_AGENT__EXPLAIN=template|llm); the figures record which.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TARGETS = {"page_interactive_ms.cold": "≤ 3000", "first_token_visible_ms.p50": "≤ 1500",
           "concurrent.errors": "0", "concurrent.cross_talk": "0", "server_log_failures": "0"}
USER_GENRES = ["Comedy", "Drama", "Horror", "Western", "Romance", "Thriller", "Crime", "Children's",
               "Musical", "Documentary"]
FOLLOW_UPS = ["something good", "more please", "another few", "what else?"]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(samples: list[float]) -> dict:
    return {"p50": round(statistics.median(samples), 1), "p95": round(percentile(samples, 0.95), 1),
            "max": round(max(samples), 1), "n": len(samples)}


def page_interactive(browser, server) -> float:
    from benchmarks.web_driver import ChatPage

    context = browser.new_context()
    try:
        ChatPage(context.new_page(), server.url).open()
        return (time.perf_counter() - server.ready_at) * 1000
    finally:
        context.close()


def warm_load_ms(browser, url: str) -> float:
    from benchmarks.web_driver import ChatPage

    context = browser.new_context()
    try:
        t0 = time.perf_counter()
        ChatPage(context.new_page(), url).open()
        return (time.perf_counter() - t0) * 1000
    finally:
        context.close()


def first_token(browser, url: str, message: str) -> tuple[float, float]:
    """(ms to the first reply text visible, ms to the turn's cards) for one message in a fresh tab."""
    from benchmarks.web_driver import ChatPage

    context = browser.new_context()
    try:
        chat = ChatPage(context.new_page(), url).open()
        box = chat.page.locator("#mq-input textarea")
        box.fill(message)
        t0 = time.perf_counter()
        box.press("Enter")
        chat.page.wait_for_function(
            """() => { const m = document.querySelectorAll('#mq-chatbot [data-testid="bot"]');
                       return m.length > 0 && m[m.length - 1].innerText.trim().length > 0; }""",
            polling="raf", timeout=600_000)
        t1 = time.perf_counter()
        chat.wait_for_turn(1, timeout_ms=600_000)
        return (t1 - t0) * 1000, (time.perf_counter() - t0) * 1000
    finally:
        context.close()


def simulated_user(url: str, index: int, turns: int, deadline: float) -> dict:
    """One user's bounded conversation; returns latencies, errors and cross-talk findings."""
    from gradio_client import Client

    genre = USER_GENRES[index % len(USER_GENRES)]
    session = f"bench-{index}-{os.getpid()}"
    out = {"latencies_ms": [], "errors": [], "cross_talk": [], "sources": []}
    try:
        client = Client(url, verbose=False, download_files=False)
        client.predict(session, api_name="/reset")
        client.predict(session, {"genres": [genre], "year_min": None, "year_max": None, "count": 3},
                       api_name="/set_preferences")
        seen: set[str] = set()
        for turn in range(turns):
            if time.monotonic() > deadline:
                out["errors"].append("deadline reached")
                break
            t0 = time.perf_counter()
            reply = client.predict(FOLLOW_UPS[turn % len(FOLLOW_UPS)], session, api_name="/chat")
            out["latencies_ms"].append((time.perf_counter() - t0) * 1000)
            for item in reply["items"]:
                out["sources"].append(item["explanation_source"])
                if genre not in item["genres"]:
                    out["cross_talk"].append(f"user {index} ({genre}) got {item['title']} {item['genres']}")
                if item["item_id"] in seen:
                    out["cross_talk"].append(f"user {index} got {item['title']} twice")
                seen.add(item["item_id"])
        final = client.predict(session, api_name="/preferences")
        if final["genres"] != [genre]:
            out["cross_talk"].append(f"user {index} preferences became {final['genres']}")
    except Exception as err:  # noqa: BLE001 — every failure is a figure here
        out["errors"].append(f"{type(err).__name__}: {err}")
    return out


def concurrent_users(url: str, users: int, turns: int, budget_s: float) -> dict:
    deadline = time.monotonic() + budget_s
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=users) as pool:
        results = list(pool.map(lambda i: simulated_user(url, i, turns, deadline), range(users)))
    wall = time.perf_counter() - t0
    latencies = [ms for r in results for ms in r["latencies_ms"]]
    errors = [e for r in results for e in r["errors"]]
    cross = [c for r in results for c in r["cross_talk"]]
    sources = [s for r in results for s in r["sources"]]
    return {"users": users, "turns_per_user": turns, "turns_done": len(latencies), "errors": len(errors),
            "error_examples": errors[:3], "cross_talk": len(cross), "cross_talk_examples": cross[:3],
            "turn_ms": summary(latencies) if latencies else {}, "wall_s": round(wall, 1),
            "turns_per_s": round(len(latencies) / wall, 2),
            "llm_explanation_share": round(sources.count("llm") / len(sources), 2) if sources else None}


def run(quick: bool = False) -> dict:
    from playwright.sync_api import sync_playwright

    from retrieval.config import Settings
    from benchmarks.web_driver import ServerProcess, launch_chromium

    settings = Settings.load()
    log_path = Path(tempfile.gettempdir()) / f"marquee-bench-web-{os.getpid()}.log"
    samples = 3 if quick else 5
    users, turns = (10, 2) if quick else (10, 4)
    messages = ["sci-fi and action films", "something older, no war films",
                "我喜欢看电影，尤其是科幻片和动作片", "I loved Alien, what else?", "a funny romantic comedy"]
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)  # started before the server: its start-up is not page time
        t_start = time.perf_counter()
        with ServerProcess(settings.home, log_path=log_path, ready_timeout=3600) as server:
            startup_s = server.ready_at - t_start
            cold = page_interactive(browser, server)
            warm = [warm_load_ms(browser, server.url) for _ in range(samples)]
            firsts, completes = zip(*(first_token(browser, server.url, messages[i % len(messages)])
                                      for i in range(samples)))
            load = concurrent_users(server.url, users, turns, budget_s=900 if quick else 1800)
            # the agent degrades instead of failing (e.g. retriever order when the reranker errs): count it
            degraded = [line.strip() for line in server.lines
                        if any(word in line for word in (" failed", "unavailable", "Traceback"))]
        browser.close()
    figures = {
        "config": {"explain": settings.agent.explain, "rerank": settings.agent.rerank,
                   "server_concurrency": settings.server.concurrency, "llm": settings.llm.model},
        "server_startup_s": round(startup_s, 1),
        "page_interactive_ms": {"cold": round(cold, 1), "warm": summary(warm)},
        "first_token_visible_ms": summary(list(firsts)),
        "turn_complete_ms": summary(list(completes)),
        "concurrent": load,
        "server_log_failures": len(degraded),
        "server_log_failure_examples": degraded[:3],
    }
    return figures


if __name__ == "__main__":  # python -m benchmarks.web [--quick] [--out DIR]
    from benchmarks.cli import main

    main("web")
