"""`marquee bench llm`: the LLM runtime on this machine (SmolLM2-135M by default).

Measured in ONE run, on real ML-100k users with EASE's top-20 as candidates:
- one-pass listwise rerank of 20 candidates and the one-pass segment scorer (Yes/No per candidate, block mask)
  vs pointwise scoring (one forward per candidate) vs generating a ranked list as text — as latency ratios;
- permutations k = 1, 2, 3 (position-bias control cost);
- first streamed token latency; one batched explanation of 5 items; explanation rejection rate on N items;
- bf16 vs fp32 vs int8 dynamic quantisation (Linear layers): speed and top-5 agreement with the default dtype;
- model reload time; peak RSS of the serving work (before the dtype variants are loaded) and after them.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

TARGETS = {
    "rerank20.p50_ms": "≤ 600 ms",
    "rerank20_segments.p50_ms": "≤ 600 ms",
    "speedup_vs_pointwise": "≥ 10×",
    "first_token_ms": "≤ 1000 ms",
    "peak_rss_mb": "≤ 2500 MB",
    "explain.rejection_rate_after_check_violations": "0 grounding violations shown",
}


def _users(n: int, seed: int = 0):
    """n real users: last 10 history titles + EASE's top-20 unseen items (the reranker's real input)."""
    from retrieval.catalog.movielens import load_movielens_100k
    from retrieval.histories import UserHistories
    from retrieval.models.ease import EASE
    from retrieval.recommender import UserContext

    data = load_movielens_100k()
    ease = EASE().fit(data.interactions, data.catalog)
    histories = UserHistories(data.interactions)
    rng = np.random.default_rng(seed)
    picked = []
    for u in rng.choice(data.interactions.n_users, n, replace=False):
        hist = histories.of(data.interactions.user_ids[u])
        ctx = UserContext(history=hist)
        top = [i for i, _ in ease.rank(ctx, 20, exclude=hist)]
        picked.append((hist, top))
    return data.catalog, picked


def _summary(catalog, hist):
    from agent.llm.prompting import UserSummary

    return UserSummary(recent=tuple(catalog.at(i).label for i in hist[-10:]))


def _quantized(llm):
    """int8 dynamic quantisation of every Linear except the output layer (the reranker reads its weights)."""
    import torch
    from torch.ao.quantization import quantize_dynamic

    from agent.llm.loading import LoadedModel

    head = llm.model.get_output_embeddings()
    names = {name for name, mod in llm.model.named_modules() if isinstance(mod, torch.nn.Linear) and mod is not head}
    model = quantize_dynamic(llm.model, qconfig_spec=names, dtype=torch.qint8, inplace=False)
    return LoadedModel(model=model, tokenizer=llm.tokenizer, name=llm.name + "-int8", device="cpu",
                       dtype=torch.qint8)


def _timed(fn, repeat: int) -> dict:
    from benchmarks.harness import timings

    return timings(fn, repeat=repeat, warmup=1)


def run(quick: bool = False) -> dict:
    import torch

    from agent.llm.backend import LocalBackend
    from agent.llm.explainer import Explainer
    from agent.llm.loading import load_model, load_model_uncached
    from agent.llm.prompting import render_chat
    from agent.llm.reranker import LLMReranker
    from agent.llm.streaming import first_token_latency, stream_text
    from benchmarks.harness import peak_rss_mb

    home = Path(os.environ.get("MARQUEE_HOME") or tempfile.mkdtemp(prefix="marquee-bench-"))
    repeat = 3 if quick else 7
    n_users = 5 if quick else 20
    n_explain = 10 if quick else 50
    figures: dict = {"threads": torch.get_num_threads()}

    start = time.perf_counter()
    llm = load_model(home=home, adapter="none")
    figures["load_s"] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    load_model_uncached(home=home, adapter="none")
    figures["reload_s"] = round(time.perf_counter() - start, 2)
    figures["dtype"] = str(llm.dtype).replace("torch.", "")

    catalog, users = _users(n_users)
    backend = LocalBackend(llm, batch_size=8)
    ranker = LLMReranker(backend, weight=1.0)
    hist, top = users[0]
    user, titles = _summary(catalog, hist), [catalog.at(i).label for i in top]
    ranker.scorer.prior(20)  # the content-free prior is computed once per list length and cached
    one_pass = _timed(lambda: ranker.llm_scores([user], [titles]), repeat)
    figures["rerank20"] = one_pass

    # pointwise: one forward per candidate (yes-probability), the way TALLRec-style scorers run
    yes = backend.tokenizer.encode("Yes", add_special_tokens=False)[0]
    fields = dict(liked="none", disliked="none", recent="; ".join(user.recent), request="none")

    def pointwise():
        for title in titles:
            backend.next_token_logprobs([render_chat(backend.tokenizer, "rerank_pointwise", candidate=title,
                                                     **fields)])[0, yes]

    figures["pointwise20"] = _timed(pointwise, max(1, repeat // 3))
    figures["speedup_vs_pointwise"] = round(figures["pointwise20"]["p50_ms"] / one_pass["p50_ms"], 1)
    # the same Yes/No question per candidate, all 20 in one pass (agent.llm.scorers.segments)
    segmented = LLMReranker(backend, weight=1.0, scorer="segments")
    figures["rerank20_segments"] = _timed(lambda: segmented.llm_scores([user], [titles]), repeat)
    figures["segments_speedup_vs_pointwise"] = round(
        figures["pointwise20"]["p50_ms"] / figures["rerank20_segments"]["p50_ms"], 1)

    listing = "\n".join(f"{lab}. {t}" for lab, t in zip(ranker.scorer.labels.labels, titles))
    gen_prompt = render_chat(backend.tokenizer, "rerank_generate", candidates=listing, **fields)
    figures["generate_list"] = _timed(lambda: backend.generate([gen_prompt], 60), max(1, repeat // 3))
    figures["speedup_vs_generate_list"] = round(figures["generate_list"]["p50_ms"] / one_pass["p50_ms"], 1)

    for k in (2, 3):
        permuted = LLMReranker(backend, weight=1.0, permutations=k)
        permuted.scorer.prior(20)
        figures[f"rerank20_k{k}"] = _timed(lambda: permuted.llm_scores([user], [titles]), repeat)

    batch_users = [_summary(catalog, h) for h, _ in users]
    batch_titles = [[catalog.at(i).label for i in t] for _, t in users]
    start = time.perf_counter()
    base_scores = ranker.llm_scores(batch_users, batch_titles)
    figures["rerank20_batched_per_user_ms"] = round((time.perf_counter() - start) * 1000 / len(users), 1)

    explain_prompt = render_chat(backend.tokenizer, "explain", label=titles[0], title=titles[0], genres="Drama",
                                 description="",
                                 request="a drama", liked="none")
    firsts = [first_token_latency(stream_text(backend, explain_prompt, 8))[0] for _ in range(repeat)]
    figures["first_token_ms"] = round(float(np.median(firsts)) * 1000, 1)

    explainer = Explainer(backend, catalog)
    five = [catalog.at(i) for i in top[:5]]
    figures["explain5"] = _timed(lambda: explainer.explain(five, request="something like my recent films"),
                                 max(1, repeat // 3))
    sample = [catalog.at(i) for _, t in users for i in t[:3]][:n_explain]
    notes = explainer.explain(sample, request="something like my recent films")
    rejected = [n for n in notes if n.source == "template"]
    grounding = [n for n in rejected if any("genre" in p or "year" in p or "decade" in p or "title" in p
                                            for p in n.rejected)]
    figures["explain"] = {"items": len(notes), "rejection_rate": round(len(rejected) / len(notes), 3),
                          "rejected_for_grounding": len(grounding), "rejected_for_budget": len(rejected) - len(grounding),
                          "rejection_rate_after_check_violations": sum(
                              not explainer.checker.check(n.text, catalog[n.item_id],
                                                          "something like my recent films").ok for n in notes)}

    # dtype / compression: speed and agreement of the top 5 with the default model
    def top5(scores):
        return [set(np.argsort(-s)[:5].tolist()) for s in scores]

    reference = top5(base_scores)
    figures["peak_rss_mb"] = peak_rss_mb()  # everything serving does: one model, rerank, explain, stream
    variants = {}
    other = "float32" if figures["dtype"] == "bfloat16" else "bfloat16"
    fp = load_model_uncached(home=home, adapter="none", dtype="float32")
    for name, model in ((other, load_model_uncached(home=home, adapter="none", dtype=other)),
                        ("int8_dynamic", _quantized(fp))):
        alt = LLMReranker(LocalBackend(model, batch_size=8), weight=1.0)
        alt.scorer.prior(20)
        timing = _timed(lambda: alt.llm_scores([user], [titles]), repeat)
        overlap = [len(a & b) / 5 for a, b in zip(reference, top5(alt.llm_scores(batch_users, batch_titles)))]
        variants[name] = {"rerank20_p50_ms": timing["p50_ms"], "top5_overlap_vs_default": round(float(np.mean(overlap)), 3),
                          "speed_vs_default": round(one_pass["p50_ms"] / timing["p50_ms"], 2)}
    figures["variants"] = variants
    figures["peak_rss_with_variants_mb"] = peak_rss_mb()  # + an fp32 and an int8 copy, for the comparison only
    return figures


if __name__ == "__main__":  # python -m benchmarks.llm [--quick] [--out DIR]
    from benchmarks.cli import main

    main("llm")
