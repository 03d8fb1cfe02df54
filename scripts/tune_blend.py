"""Tune the chat's blend weights (`[candidates.blend]`, retrieval/candidates/blend.py) on the VALIDATION stage of
the request-conditioned benchmark (`marquee eval --conversational --stage validation`), never on test.

    .venv/bin/python scripts/tune_blend.py [--users 0] [--seed 0] [--out configs/tune-blend.md]

1. The benchmark's requests at stage validation (the target is each user's validation film; the chat sees the
   train split only, leak-checked as in the benchmark), each answered by the chat agent in a fresh session as
   that known user; the CandidateRequest its planner sends to the retriever is recorded.
2. Each request's signals are computed once with the chat's own code (`HybridRetriever.signals`) and kept
   standardised over the allowed items, so any weights rank the allowed items in one dot product.
3. A grid over the weights the requests exercise (anchor, then genre_collaborative, popularity; collaborative = 1
   sets the scale), and
   proxy experiments for the signals they do not carry: the genre requests with the genre as a soft wish
   (mood) or as free text (semantic), for a known user and for an anonymous one (cold start).
4. The tables go to `--out` (markdown). The chosen weights become `BlendWeights`' defaults
   (retrieval/config/sections.py); then confirm with the real benchmark at stage validation.
"""
from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from finetune.data.splits import leave_one_out
from finetune.evaluation.conversational.isolation import (check_agent, target_rows, visible_histories,
                                                          visible_interactions)
from finetune.evaluation.conversational.requests import RequestWriter, bench_users, has_ratings, phrasings
from finetune.evaluation.harness import select_users
from retrieval.candidates.blend import SIGNALS, STANDARDISED, blend, standardised
from retrieval.config import Settings
from retrieval.config.conversational import PICKS
from retrieval.recommender import UserContext

STAGE = "validation"
ANCHOR = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0)
POPULARITY = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)
GENRE_COLLABORATIVE = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
SOFT = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)  # mood / semantic weights tried in the proxies


@dataclass
class Case:
    """One request as the ranking sees it: its allowed items and their weighted-signal inputs."""

    kind: str
    items: np.ndarray  # catalog indices of the allowed items
    target: int  # position of the target in `items`, or -1 when the request does not allow it
    parts: dict[str, np.ndarray]  # per signal: standardised (or share) value of each allowed item

    def ndcg(self, weights: dict[str, float], popularity_with_collaborative: bool = False) -> float:
        """`blend`'s ranking rules (popularity only without collaborative evidence, unless asked to measure what
        it would do with it; popularity alone without a taste signal), exact ties by catalog index."""
        if self.target < 0:
            return 0.0
        used = {n: w for n, w in weights.items() if w and n in self.parts}
        if "collaborative" in self.parts and not popularity_with_collaborative:
            used.pop("popularity", None)
        if not any(n != "popularity" for n in used):
            used = {"popularity": weights.get("popularity") or 1.0}
        score = sum(w * self.parts[n] for n, w in used.items())
        t = score[self.target]
        rank = int(((score > t) | ((score == t) & (self.items < self.items[self.target]))).sum())
        return 1.0 / np.log2(rank + 2) if rank < PICKS else 0.0


def case_of(kind: str, signals, target: int) -> Case:
    items = np.flatnonzero(signals.allowed)
    position = np.flatnonzero(items == target)
    parts = {n: (standardised(v, signals.allowed) if n in STANDARDISED else np.asarray(v, np.float64))[items]
             for n, v in signals.values.items()}
    return Case(kind, items, int(position[0]) if position.size else -1, parts)


def mean_ndcg(cases: list[Case], weights: dict[str, float], kind: str | None = None, **rules) -> float:
    chosen = [c for c in cases if kind is None or c.kind == kind]
    return float(np.mean([c.ndcg(weights, **rules) for c in chosen])) if chosen else float("nan")


def knee(values: dict[float, float], within: float = 0.01) -> float:
    """The smallest weight whose NDCG@5 is within `within` of the best: a soft signal stays soft (the proxies'
    wishes are the target's own genre, so their curves keep rising towards a filter)."""
    best = max(values.values())
    return min(w for w, v in values.items() if v >= best - within)


def record_requests(settings: Settings, users: int, seed: int, log=print):
    """The benchmark's validation requests, the chat's CandidateRequest for each, and the retriever."""
    from agent.core import RecommenderAgent
    from agent.storage import Storage
    from retrieval.catalog import load_dataset
    from retrieval.service import RetrievalService

    dataset = load_dataset(settings.catalog, settings.data_dir)
    split = leave_one_out(dataset.interactions)
    chosen = select_users(split, users, seed)
    visible = visible_interactions(split, STAGE)
    histories = visible_histories(split, STAGE, chosen)
    targets = [int(split.interactions.items[target_rows(split, STAGE)[u]]) for u in chosen]
    people = bench_users(visible, histories, chosen, targets)
    requests = RequestWriter(dataset.catalog, seed=seed, rated=has_ratings(visible)).write(people).requests
    service = RetrievalService(settings, dataset=dataset).with_interactions(visible, candidates=settings.candidates)
    folder = tempfile.mkdtemp(prefix="marquee-tune-")
    agent = RecommenderAgent(settings, service=service, storage=Storage(Path(folder) / "tune.db"))
    check_agent(agent, split, chosen, histories, STAGE)
    sent = []
    agent.pipeline.retrieve_fn = lambda request, k: sent.append(request) or []  # record, rank offline
    recorded = []
    for n, request in enumerate(requests):
        before = len(sent)
        agent.chat(request.text, session_id=f"tune-{n}", user_id=request.user_id)
        recorded.append(sent[before] if len(sent) > before else None)
        if n % 500 == 0:
            log(f"recorded {n}/{len(requests)} requests")
    retriever = service.retriever
    similarities, texts = retriever.semantic.similarities, {}  # a few texts, many requests: embed each once
    retriever.semantic.similarities = lambda text: texts.setdefault(text, similarities(text))
    return requests, recorded, retriever, people


def proxies(request, candidate) -> dict[str, object]:
    """The genre request's genre as a soft wish instead of a filter: as a mood, as free text (the benchmark's
    English word for it), and as free text from an anonymous user (cold start)."""
    genre = next(iter(request.attributes.genres))
    word = phrasings()["genre_words"].get(genre, genre.lower())
    soft = replace(candidate, constraints=replace(candidate.constraints, include_genres=frozenset()))
    return {"mood": replace(soft, mood_genres=frozenset({genre})),
            "text": replace(soft, words=f"{word} movies"),
            "cold-text": replace(soft, words=f"{word} movies", user_id=None)}


def collect(settings: Settings, users: int, seed: int, log=print) -> tuple[dict[str, list[Case]], int]:
    requests, recorded, retriever, people = record_requests(settings, users, seed, log)
    catalog = retriever.catalog
    cases: dict[str, list[Case]] = {"main": [], "loved-last": [], "cold-loved": [], "mood": [], "text": [],
                                    "cold-text": []}
    started = time.perf_counter()
    for n, (request, candidate) in enumerate(zip(requests, recorded)):
        if candidate is None:  # the chat answered without retrieving (nothing understood): no pick
            cases["main"].append(Case(request.type, np.zeros(0, np.int64), -1, {}))
            continue
        cases["main"].append(case_of(request.type, retriever.signals(candidate), request.target))
        if request.type == "loved":  # variant: the loved title moved to the end of the history (newest evidence)
            logged = retriever.collaborative.histories.of(candidate.user_id)
            liked = tuple(catalog.index_of(i) for i in candidate.liked)
            signals = retriever.signals(candidate)
            order = tuple(i for i in logged if i not in liked) + liked
            signals.values["collaborative"] = retriever.collaborative.model.score([UserContext(history=order)])[0]
            cases["loved-last"].append(case_of("loved", signals, request.target))
            anonymous = retriever.signals(replace(candidate, user_id=None))  # the same words, no known user
            cases["cold-loved"].append(case_of("loved", anonymous, request.target))
        if request.type == "genre":
            for name, variant in proxies(request, candidate).items():
                cases[name].append(case_of("genre", retriever.signals(variant), request.target))
        if n % 500 == 0:
            log(f"signals {n}/{len(requests)} ({time.perf_counter() - started:.0f} s)")
    return cases, len(people)


def check_offline_matches_blend(cases: list[Case], weights: dict[str, float]) -> None:
    """The fast evaluator must rank like `blend` itself (same cold-start rule, same ties)."""
    from retrieval.candidates.blend import Signals

    for case in cases[:200]:
        if case.target < 0:
            continue
        n = int(case.items.max()) + 1
        allowed = np.zeros(n, dtype=bool)
        allowed[case.items] = True
        values = {}
        for name, part in case.parts.items():  # already standardised: standardising again changes nothing
            values[name] = np.zeros(n)
            values[name][case.items] = part
        total, _ = blend(Signals(allowed=allowed, values=values), weights)
        order = np.lexsort((np.arange(n), -total))[:PICKS]
        expected = case.ndcg(weights)
        hit = np.flatnonzero(order == case.items[case.target])
        got = 1.0 / np.log2(hit[0] + 2) if hit.size else 0.0
        assert abs(got - expected) < 1e-9, (case.kind, got, expected)


def table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=0, help="0 = all users")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("configs/tune-blend.md"))
    args = parser.parse_args()
    started, load = time.perf_counter(), os.getloadavg()[0]
    # any weight > 0 makes the retriever compute the in-genre signal (it skips that model pass at 0); the weights
    # themselves are applied offline here
    settings = Settings.load(agent={"rerank": False}, candidates={"blend": {"genre_collaborative": 1.0}})
    cases, n_users = collect(settings, args.users, args.seed, log=lambda m: print(m, file=sys.stderr, flush=True))
    main_cases = cases["main"]
    kinds = list(dict.fromkeys(c.kind for c in main_cases))
    base = {name: 0.0 for name in SIGNALS} | {"collaborative": 1.0}

    # 1. the benchmark's own requests: the anchor weight (collaborative = 1 sets the scale)
    anchor = {a: mean_ndcg(main_cases, base | {"anchor": a}) for a in ANCHOR}
    best_anchor = max(ANCHOR, key=lambda a: (round(anchor[a], 6), -a))
    anchored = base | {"anchor": best_anchor}
    # 1b. the in-genre history (the collaborative model on the history having the request's genres)
    in_genre = {g: mean_ndcg(main_cases, anchored | {"genre_collaborative": g}) for g in GENRE_COLLABORATIVE}
    best_in_genre = max(GENRE_COLLABORATIVE, key=lambda g: (round(in_genre[g], 6), -g))
    chosen = anchored | {"genre_collaborative": best_in_genre}
    check_offline_matches_blend(main_cases, chosen)
    lines = [f"# Tuning the chat's blend weights on the validation stage ({dt.date.today()})", "",
             f"`{' '.join(['python', *sys.argv])}`: {len(main_cases)} requests of {n_users} users (seed {args.seed}); "
             f"{settings.catalog.source}; load average {load:.1f}; {time.perf_counter() - started:.0f} s in all. "
             "NDCG@5 of each user's validation film among the chat's top 5 allowed items (the chat sees the train "
             "split only; the same requests as `marquee eval --conversational --stage validation`).", "",
             "## 1. The benchmark's requests: anchor weight (collaborative = 1)", ""]
    lines += table([(f"{a:g}", f"{anchor[a]:.4f}", *(f"{mean_ndcg(main_cases, base | {'anchor': a}, k):.4f}"
                                                     for k in kinds)) for a in ANCHOR], ("anchor", "all", *kinds))
    lines += ["", f"## 1b. In-genre history: genre_collaborative weight (collaborative 1, anchor {best_anchor:g})", ""]
    lines += table([(f"{g:g}", f"{in_genre[g]:.4f}", *(f"{mean_ndcg(main_cases, anchored | {'genre_collaborative': g}, k):.4f}"
                                                      for k in kinds)) for g in GENRE_COLLABORATIVE],
                   ("genre_collaborative", "all", *kinds))
    lines += ["", "## 2. Popularity for a known user (what it would do if it joined the collaborative scores)", ""]
    lines += table([(f"{p:g}", *(f"{mean_ndcg(main_cases, chosen | {'popularity': p}, k, popularity_with_collaborative=True):.4f}"
                                 for k in (None, *kinds))) for p in POPULARITY], ("popularity", "all", *kinds))
    lines += ["", "## 3. \"I loved X\": X where it was in the history vs moved to the end (newest evidence)", ""]
    lines += table([(f"{a:g}", f"{mean_ndcg(cases['main'], base | {'anchor': a}, 'loved'):.4f}",
                     f"{mean_ndcg(cases['loved-last'], base | {'anchor': a}):.4f}",
                     f"{mean_ndcg(cases['cold-loved'], base | {'anchor': a}):.4f}") for a in ANCHOR],
                   ("anchor", "X kept in place", "X moved last", "no known user (X alone)"))
    mood = {w: mean_ndcg(cases["mood"], chosen | {"mood": w}) for w in SOFT}
    text = {w: mean_ndcg(cases["text"], chosen | {"semantic": w}) for w in SOFT}
    best_mood, best_text = knee(mood), max(SOFT, key=lambda w: (round(text[w], 6), -w))
    lines += ["", "## 4. Proxies for the signals the requests do not carry: the genre request's genre as a soft wish "
              "(NOT a filter), as a mood or as free text (\"sci-fi movies\"), for the known user", ""]
    lines += table([(f"{w:g}", f"{mood[w]:.4f}", f"{text[w]:.4f}") for w in SOFT], ("weight", "mood", "semantic"))
    cold = {p: mean_ndcg(cases["cold-text"], chosen | {"semantic": best_text, "popularity": p}) for p in POPULARITY}
    best_pop = max(POPULARITY, key=lambda p: (round(cold[p], 6), -p))
    lines += ["", f"## 5. Cold start: the same free text from an anonymous user (semantic {best_text:g}): popularity", ""]
    lines += table([(f"{p:g}", f"{cold[p]:.4f}") for p in POPULARITY], ("popularity", "NDCG@5"))
    final = chosen | {"mood": best_mood, "semantic": best_text, "popularity": best_pop}
    lines += ["", "## Chosen (the defaults of `BlendWeights`, retrieval/config/sections.py)", "",
              ", ".join(f"{n} {w:g}" for n, w in final.items()) + f": validation NDCG@5 all {mean_ndcg(main_cases, final):.4f} "
              f"(" + ", ".join(f"{k} {mean_ndcg(main_cases, final, k):.4f}" for k in kinds) + "). "
              "Rules: the best value on the benchmark's requests (1, 1b) and proxies (4: semantic; 5); for the mood the "
              "smallest weight within .01 of the best (its proxy wish is the target's own genre, so more weight "
              "always looks better up to a filter).", ""]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
