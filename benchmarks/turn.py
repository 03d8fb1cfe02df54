"""Turn latency of the agent: p50 / p95 over distinct 3-turn conversations ("sci-fi and action films" →
"something older" → "no war films", …), for three pipelines sharing one retrieval stack:

- planner: deterministic understanding + hybrid retrieval, template explanations (no LLM);
  every pipeline also reports the time of the evidence step (agent/evidence.py) per turn;
- rerank: + the LLM reranker (one forward pass);
- rerank_explain: + LLM explanations (one batched generation).

The shipped adapter's tuned fusion weight is 0, and with w = 0 serving skips the LLM forward pass; the rerank
pipelines here force w = FORCED_WEIGHT so that their figures include that pass (the worst case).

    python -m benchmarks.turn [--quick]      (or `marquee bench turn`)
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.harness import peak_rss_mb

# Distinct conversations, so no cache (query embeddings, search results) serves a repeated turn.
CONVERSATIONS_TEXT = (
    ("sci-fi and action films", "something older", "no war films"),
    ("comedies from the 90s", "something older", "no romance"),
    ("I loved Alien, what else?", "no horror", "something older"),
    ("thrillers", "from the 80s", "no crime"),
    ("westerns", "something newer", "3 more"),
    ("我喜欢看电影，尤其是科幻片和动作片", "90年代的", "不要战争片"),
    ("feel-good movies", "from the 80s", "no musicals"),
    ("I am user 196", "dramas", "something older"),
    ("film noir", "newer", "no crime"),
    ("kids movies", "animated ones", "something older"),
)
PIPELINES = {
    "planner": {"rerank": False, "explain": "template"},
    "rerank": {"rerank": True, "explain": "template"},  # the default configuration
    "rerank_explain": {"rerank": True, "explain": "llm"},
}
FORCED_WEIGHT = 0.1
CONVERSATIONS = {"planner": (3, 10), "rerank": (2, 5), "rerank_explain": (1, 3)}  # (quick, full) per pipeline


def _percentiles(samples: list[float]) -> dict:
    samples = sorted(samples)
    p95 = samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]
    return {"p50_s": round(statistics.median(samples), 3), "p95_s": round(p95, 3),
            "max_s": round(samples[-1], 3), "turns": len(samples)}


def _timed(obj, method: str) -> list[float]:
    """Wrap obj.method so that each call's duration (seconds) is appended to the returned list."""
    durations: list[float] = []
    inner = getattr(obj, method)

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            durations.append(time.perf_counter() - t0)

    setattr(obj, method, timed)
    return durations


def _checked(reply):
    """Only real replies count: a turn that failed (and apologised) would time as fast as nothing."""
    if not reply.items:
        raise RuntimeError(f"benchmark turn produced no items: {reply.text[:200]!r}")
    return reply


def run(quick: bool = False) -> dict:
    from retrieval.config import Settings
    from agent.core import RecommenderAgent

    home = Path(os.environ.get("MARQUEE_HOME") or tempfile.mkdtemp(prefix="marquee-bench-"))
    base = Settings.load(home=home)
    service = None
    figures: dict = {}
    for name, agent_cfg in PIPELINES.items():
        update = {"agent": base.agent.model_copy(update=agent_cfg)}
        if agent_cfg["rerank"]:
            update["llm"] = base.llm.model_copy(update={"fusion_weight": FORCED_WEIGHT})
        settings = base.model_copy(update=update)
        agent = RecommenderAgent(settings, service=service)
        service = agent.service
        evidence_s = _timed(agent.pipeline, "evidence")  # the per-pick evidence step of each turn
        t0 = time.perf_counter()
        _checked(agent.chat("documentaries", session_id=f"warm-{name}-{uuid.uuid4().hex[:6]}"))  # index, model load
        warm = time.perf_counter() - t0
        samples = []
        for n in range(CONVERSATIONS[name][0 if quick else 1]):
            sid = f"bench-{name}-{uuid.uuid4().hex[:8]}"
            for message in CONVERSATIONS_TEXT[n % len(CONVERSATIONS_TEXT)]:
                t = time.perf_counter()
                reply = agent.chat(message, session_id=sid)
                samples.append(time.perf_counter() - t)
                _checked(reply)
        figures[name] = {**_percentiles(samples), "warmup_s": round(warm, 2)}
        steps = sorted(evidence_s[1:])  # the first call builds the log statistics (once per service)
        figures[name]["evidence_ms_p50"] = round(1000 * statistics.median(steps), 2)
        figures[name]["evidence_ms_p95"] = round(1000 * steps[min(len(steps) - 1, int(round(0.95 * (len(steps) - 1))))], 2)
        if agent_cfg["rerank"]:
            figures[name]["fusion_weight_forced"] = FORCED_WEIGHT
        if agent.llm is not None and agent.llm.errors:
            figures[name]["llm_unavailable"] = "; ".join(agent.llm.errors.values())[:200]
    figures["load_average_1m"] = round(os.getloadavg()[0], 2)
    figures["peak_rss_mb"] = peak_rss_mb()
    return figures


# The planner pipeline is what the default configuration costs (the shipped adapter's w = 0: no LLM pass).
TARGETS = {"planner.p95_s": "≤ 0.5 s (no LLM; issue #12)",
           **{f"{name}.p95_s": "≤ 4 s (2-core CPU)" for name in PIPELINES if name != "planner"}}


if __name__ == "__main__":  # python -m benchmarks.turn [--quick] [--out DIR]
    from benchmarks.cli import main

    main("turn")
