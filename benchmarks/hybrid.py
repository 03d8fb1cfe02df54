"""Hybrid candidate latency: 20 fused candidates on ML-100k, per query type (`marquee bench hybrid`).

Each call is one full `RetrievalService.candidates(request, 20)`: query embedding, Chroma search with
filters, collaborative scoring, popularity prior, RRF, constraint checks (and MMR in the last row).
The index is built first if missing (not timed). Target (issue 4): p95 ≤ 80 ms on a 2-core CPU.
"""
from __future__ import annotations

import itertools
import os
import time

from benchmarks.harness import peak_rss_mb, timings

K = 20
TARGETS = {f"{name}.p95_ms": "≤ 80" for name in
           ("text", "text_genre_year", "liked_titles", "known_user", "text_liked_filters", "text_mmr", "all")}

TEXTS = ["sci-fi and action films", "a funny romantic comedy", "dark psychological thriller", "animated film for kids",
         "courtroom drama", "space adventure with aliens", "gangster movie", "musical", "western with gunfights",
         "something light for a rainy sunday"]


def requests(service):
    from retrieval.candidates.base import CandidateRequest
    from retrieval.constraints import Constraints

    ids = lambda *titles: tuple(service.search_titles(t)[0][0].item_id for t in titles)  # noqa: E731
    filters = [Constraints(include_genres=frozenset({"Sci-Fi"}), year_min=1980),
               Constraints(include_genres=frozenset({"Comedy"}), exclude_genres=frozenset({"Romance"}), year_max=1995),
               Constraints(include_genres=frozenset({"Crime", "Thriller"}), year_min=1970, year_max=1990),
               Constraints(exclude_genres=frozenset({"War", "Horror"}), year_min=1990)]
    likes = [ids("star wars"), ids("the godfather", "pulp fiction"), ids("toy story"), ids("alien", "terminator 2"),
             ids("casablanca", "the maltese falcon", "vertigo")]
    users = [service.dataset.interactions.user_ids[i] for i in (0, 10, 100, 400, 900)]
    return {
        "text": [CandidateRequest(query=q) for q in TEXTS],
        "text_genre_year": [CandidateRequest(query=q, constraints=c) for q, c in zip(TEXTS, itertools.cycle(filters))],
        "liked_titles": [CandidateRequest(liked=liked) for liked in likes],
        "known_user": [CandidateRequest(user_id=u) for u in users],
        "text_liked_filters": [CandidateRequest(query=q, liked=liked, constraints=c)
                               for q, liked, c in zip(TEXTS, likes, filters)],
    }


def _cycle(service, reqs, retriever=None):
    it = itertools.cycle(reqs)
    generate = (retriever.generate if retriever is not None else service.candidates)
    return lambda: generate(next(it), K)


def run(quick: bool = False) -> dict:
    from retrieval.config import Settings
    from retrieval.candidates.threads import single_threaded_torch
    from retrieval.service import RetrievalService

    repeat = 40 if quick else 200
    service = RetrievalService.from_config(Settings.load())
    started = time.perf_counter()
    service.ensure_index(progress=True)
    service.retriever  # fits the collaborative models (not timed per query)
    setup_s = time.perf_counter() - started
    # other work on the machine inflates every figure: record how busy it was
    figures: dict = {"load_avg_1m_at_start": round(os.getloadavg()[0], 2), "catalog_items": len(service.catalog),
                     "k": K, "setup_s": round(setup_s, 2), "variant": "quick" if quick else "full"}
    texts = itertools.cycle(TEXTS)
    def embed_query():  # as the semantic generator does it (single-threaded, see retrieval/candidates/threads.py)
        with single_threaded_torch():
            service.encoder.encode_query(next(texts))

    figures["query_embedding_only"] = timings(embed_query, repeat=repeat, warmup=5)
    all_reqs = []
    for name, reqs in requests(service).items():
        all_reqs += reqs
        figures[name] = timings(_cycle(service, reqs), repeat=repeat, warmup=len(reqs))
    mmr = service.build_retriever(service.config.model_copy(update={"mmr_lambda": 0.7}))
    figures["text_mmr"] = timings(_cycle(service, requests(service)["text"], mmr), repeat=repeat, warmup=10)
    figures["all"] = timings(_cycle(service, all_reqs), repeat=repeat, warmup=len(all_reqs))
    figures["peak_rss_mb"] = peak_rss_mb()
    return figures


if __name__ == "__main__":  # python -m benchmarks.hybrid [--quick] [--out DIR]
    from benchmarks.cli import main

    main("hybrid")
