"""`marquee bench explain`: explanations and item descriptions on held-out cases, template vs base model vs LoRA.

Held-out cases are replies of the chat on the train split for users that `marquee finetune --task explain` never
uses (`[finetune.explain] heldout_users`, the same seeded split: finetune/data/explain_cases.py), five picks each
(≥ 300 triples in the full run), and held-out items to describe. Systems: the template; the base model with free
decoding (`base`) and with claim-constrained decoding (`base_constrained`, agent/llm/constrained.py); the trained
explainer adapter with constrained decoding, as served (`lora_constrained`). For each system:
- `pass_rate_before_fallback`: share of the model's sentences the claim checker (agent/llm/claims.py) passes;
- `unsupported_shown`: explanations shown after fallback with a claim the checker rejects (length aside);
- `generic_rate`: sentences with a phrase of agent/llm/claims.toml [generic] (before fallback, and shown);
- `overlap_replies`: replies in which two shown explanations share a 5-word sequence (a title counts as one word);
- `personal_share`: of the picks that have evidence personal to the user or the request, the share whose shown
  explanation cites it;
- latency per reply from the picks to the first explanation and to all of them (p50 / p95), and peak RSS.
Where the served explainer generates on llama.cpp (agent/llm/llamacpp.py), the same system is also run on torch
(`lora_constrained_torch`, the same weights and loop) and `runtime` compares the two reply by reply: the mean per-reply
difference torch − llama.cpp of the first and of all explanations' seconds, with a paired bootstrap 95% CI, and the
share of drafts the two write word for word alike. The served explainer is also run without stepping back from dead
ends (`lora_constrained_no_steps_back`, agent/llm/lookahead.py) and `steps_back` gives the paired pick-by-pick gain
in pass rate and the seconds it adds per reply, with bootstrap CIs. With `MARQUEE_BENCH_EXPLAIN_BASELINE` set to another
explainer adapter (e.g. the one a retraining replaced), that adapter is served the same way
(`lora_constrained_baseline`) and `against_baseline` gives the same paired figures, served − baseline.
It also writes `benchmarks/results/explain-samples.md`: five example replies side by side and the 50 LoRA sentences
of the manual audit (a seeded sample, each with its evidence; verdicts in benchmarks/results/eval-explain-audit.md).

    marquee bench explain [--quick]
"""
from __future__ import annotations

import os
import re
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

SERVED = "lora_constrained"  # the explainer as `agent.explain = "llm"` serves it
TORCH = f"{SERVED}_torch"  # the served explainer generating on torch (when it is served on llama.cpp)
NO_STEPS_BACK = f"{SERVED}_no_steps_back"  # the served explainer ending rows at dead ends (agent/llm/lookahead.py)
BASELINE = f"{SERVED}_baseline"  # another explainer adapter served the same way (MARQUEE_BENCH_EXPLAIN_BASELINE)
REJECTION_CLASSES = 8  # the most frequent reasons drafts were rejected, per system
TARGETS = {
    f"{SERVED}.pass_rate_before_fallback": "≥ 0.98",
    f"{SERVED}.unsupported_shown": "0",
    f"{SERVED}.generic_rate": "≤ 0.05",
    f"{SERVED}.overlap_replies": "0",
    f"{SERVED}.personal_share": "≥ 0.90",
    f"{SERVED}.first_explanation_s.p95": "≤ 0.8 s (2-core CPU)",
    f"{SERVED}.all_explanations_s.p95": "≤ 1.5 s (2-core CPU)",
    "peak_rss_mb": "≤ 2000 MB",
    f"descriptions.{SERVED}.pass_rate": "≥ 0.95",
}
AUDIT = 50
EXAMPLES = 5


def _percentiles(samples: Sequence[float]) -> dict:
    ordered = sorted(samples)
    if not ordered:
        return {}
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"p50": round(statistics.median(ordered), 3), "p95": round(p95, 3), "max": round(ordered[-1], 3)}


class Measured:
    """Every reply of one system: the explanations shown, the model's drafts, timings."""

    def __init__(self, name: str):
        self.name = name
        self.replies: list[list] = []  # per reply: [(case, shown text, source, draft)]
        self.first: list[float] = []
        self.all: list[float] = []


def run_system(name: str, explainer, replies: dict, contexts: dict, templates: dict,
               alternatives: dict | None = None) -> Measured:
    measured = Measured(name)
    for reply_id, members in replies.items():
        picks = [contexts[c.case_id] for c in members]
        fallbacks = [templates[c.case_id] for c in members]
        others = [alternatives[c.case_id] for c in members] if alternatives else ()
        rows = []
        if explainer is None:  # the template system
            rows = [(c, fallbacks[n], "template", fallbacks[n], False) for n, c in enumerate(members)]
        else:
            started = time.perf_counter()
            for n, note in enumerate(explainer.stream(picks, fallbacks, others)):
                if n == 0:
                    measured.first.append(time.perf_counter() - started)
                rows.append((members[n], note.text, note.source, note.draft, note.garbled))
            measured.all.append(time.perf_counter() - started)
        measured.replies.append(rows)
    return measured


def figures(measured: Measured, checker, contexts: dict) -> dict:
    from agent.llm.claims import generic_phrases, shared_ngram
    from agent.llm.explainer import reply_titles

    passed = sum(_draft_passes(measured, checker, contexts))
    drafts = generic = generic_shown = unsupported = personal_cases = personal_cited = 0
    rejections: Counter[str] = Counter()  # why drafts failed: each kind of problem once per draft
    llm_shown = overlap_drafts = overlap_shown = 0
    for rows in measured.replies:
        shown_texts, draft_texts = [], []
        for case, text, source, draft, garbled in rows:
            ctx = contexts[case.case_id]
            drafts += 1
            if draft:
                verdict = checker.check_claims(draft, ctx.item, ctx.evidence, ctx.asked_genres)
                generic += bool(generic_phrases(draft))
                draft_texts.append(draft)
                rejections.update({_problem_class(p) for p in verdict.problems} | ({"garbled"} if garbled else set()))
            else:
                rejections["no usable sentence"] += 1
            shown = checker.check_claims(text, ctx.item, ctx.evidence, ctx.asked_genres, min_words=0, max_words=10_000)
            unsupported += not shown.ok
            generic_shown += bool(shown.generic)
            llm_shown += source == "llm"
            if ctx.evidence.personal():
                personal_cases += 1
                personal_cited += shown.personal
            shown_texts.append(text)
        titles = reply_titles([contexts[case.case_id] for case, *_ in rows])  # a title counts as one word
        overlap_shown += any(shared_ngram(t, shown_texts[:i], titles=titles) for i, t in enumerate(shown_texts))
        overlap_drafts += any(shared_ngram(t, draft_texts[:i], titles=titles) for i, t in enumerate(draft_texts))
    out = {"picks": drafts, "replies": len(measured.replies),
           "pass_rate_before_fallback": round(passed / drafts, 4) if drafts else 0.0,
           "shown_llm_share": round(llm_shown / drafts, 4) if drafts else 0.0,
           "unsupported_shown": unsupported,
           "generic_rate": round(generic / drafts, 4) if drafts else 0.0,
           "generic_rate_shown": round(generic_shown / drafts, 4) if drafts else 0.0,
           "overlap_replies": overlap_shown, "overlap_replies_before_fallback": overlap_drafts,
           "personal_share": round(personal_cited / personal_cases, 4) if personal_cases else 0.0,
           "picks_with_personal_evidence": personal_cases}
    if rejections:
        out["drafts_rejected_for"] = dict(rejections.most_common(REJECTION_CLASSES))
    if measured.first:
        out["first_explanation_s"] = _percentiles(measured.first)
        out["all_explanations_s"] = _percentiles(measured.all)
    return out


def runtime_figures(served: Measured, torch_run: Measured) -> dict:
    """llama.cpp (served) against torch on the same replies: paired per-reply seconds, and drafts alike."""
    import numpy as np

    from finetune.evaluation.metrics import paired_bootstrap

    out: dict = {"replies": len(served.all)}
    for name, fast, slow in (("first_explanation_s", served.first, torch_run.first),
                             ("all_explanations_s", served.all, torch_run.all)):
        gap = paired_bootstrap(np.array(slow), np.array(fast))
        out[name] = {"llama_cpp_p50": round(statistics.median(fast), 3), "torch_p50": round(statistics.median(slow), 3),
                     "torch_minus_llama_cpp_mean": round(gap["diff"], 3),
                     "ci95": [round(gap["ci_low"], 3), round(gap["ci_high"], 3)],
                     "speedup_of_sums": round(sum(slow) / sum(fast), 2)}
    drafts = [(a[3], b[3]) for ra, rb in zip(served.replies, torch_run.replies) for a, b in zip(ra, rb)]
    out["drafts_alike"] = round(sum(a == b for a, b in drafts) / len(drafts), 4) if drafts else 0.0
    return out


def paired_figures(served: Measured, other: Measured, checker, contexts: dict) -> dict:
    """The served explainer against another system on the same picks (itself without steps back from dead ends,
    or another adapter): the paired mean difference served − other in drafts that pass the gate (claim checker and
    fluency floor), and in seconds to the first and to all explanations of a reply, each with a paired bootstrap
    95% CI."""
    import numpy as np

    from finetune.evaluation.metrics import paired_bootstrap

    out: dict = {"picks": sum(len(rows) for rows in served.replies)}
    mine, theirs = (np.array(_draft_passes(m, checker, contexts), dtype=float) for m in (served, other))
    for name, a, b in (("pass_rate_gain", mine, theirs),
                       ("first_explanation_s_added", np.array(served.first), np.array(other.first)),
                       ("all_explanations_s_added", np.array(served.all), np.array(other.all))):
        gap = paired_bootstrap(a, b)
        out[name] = {"mean": round(gap["diff"], 4), "ci95": [round(gap["ci_low"], 4), round(gap["ci_high"], 4)]}
    return out


def _draft_passes(measured: Measured, checker, contexts: dict) -> list[bool]:
    """Per pick, in reply order: whether the model's draft passes the gate (the checker and the fluency floor)."""
    passes = []
    for rows in measured.replies:
        for case, _, _, draft, garbled in rows:
            ctx = contexts[case.case_id]
            passes.append(bool(draft) and not garbled
                          and checker.check_claims(draft, ctx.item, ctx.evidence, ctx.asked_genres).ok)
    return passes


def _problem_class(problem: str) -> str:
    """A checker problem without its particulars ("says you asked for war, …" -> "says you asked for"): the
    words before the first quote, bracket, colon, comma or digit, at most five."""
    head = re.split(r"""["'(:,\d]""", problem, maxsplit=1)[0]
    return " ".join(head.split()[:5]) or problem[:40]


def describe_figures(writer, cases, catalog) -> dict:
    from agent.llm.claims import generic_phrases
    from retrieval.evidence import Evidence

    items = [catalog[c.item_id] for c in cases]
    written = passed = generic = 0
    texts = []
    started = time.perf_counter()
    for at in range(0, len(items), 8):
        batch = items[at:at + 8]
        evidence = [Evidence.model_validate(c.evidence) for c in cases[at:at + 8]]
        fields = [_describe_fields(it, ev) for it, ev in zip(batch, evidence)]
        drafts = {d.index: d for d in writer.write("describe", fields,
                                                   constraints=writer.constraints(list(zip(batch, evidence))))}
        for n, (item, ev) in enumerate(zip(batch, evidence)):
            draft = drafts.get(n)
            text = draft.text if draft else None
            written += text is not None
            if text:
                problems = writer.checker.check_claims(text, item, ev).problems + draft.fluency_problems()
                passed += not problems
                generic += bool(generic_phrases(text))
                texts.append((item.label, text, not problems, problems))
    return {"items": len(items), "pass_rate": round(passed / len(items), 4) if items else 0.0,
            "generic_rate": round(generic / len(items), 4) if items else 0.0,
            "seconds_per_item": round((time.perf_counter() - started) / max(1, len(items)), 2)}, texts


def _describe_fields(item, evidence):
    from agent.llm.pick_facts import describe_fields

    return describe_fields(item, evidence)


def run(quick: bool = False) -> dict:
    import numpy as np

    from agent.llm.backend import LocalBackend
    from agent.llm.claims import ClaimChecker
    from agent.llm.describe import DescriptionWriter
    from agent.llm.evidence_text import ExplanationWriter
    from agent.llm.explainer import Explainer
    from agent.llm.llamacpp import engine_for
    from agent.llm.loading import NO_ADAPTER, attach_adapter, load_model, resolve_adapter
    from benchmarks.harness import in_checkout, peak_rss_mb
    from finetune.data.explain_cases import build_cases, build_describe_cases, replies
    from retrieval.catalog import load_dataset
    from retrieval.config import Settings
    from retrieval.evidence import Evidence

    home = Path(os.environ.get("MARQUEE_HOME") or tempfile.mkdtemp(prefix="marquee-bench-"))
    settings = Settings.load(home=home)
    dataset = load_dataset(settings.catalog, settings.data_dir)
    catalog = dataset.catalog
    ecfg = settings.finetune.explain
    n_replies, n_items = (12, 16) if quick else (64, 40)
    cases = build_cases(settings, dataset, train_replies=0, heldout_replies=n_replies, seed=settings.finetune.seed,
                        heldout_users=ecfg.heldout_users, log=lambda m: None)
    grouped = replies(cases)
    contexts = {c.case_id: c.context(catalog) for c in cases}
    templates, alternatives = {}, {}
    for members in grouped.values():
        picks = [(catalog[c.item_id], Evidence.model_validate(c.evidence)) for c in members]
        templates.update({c.case_id: t for c, t in zip(members, ExplanationWriter().write(picks))})
        alternatives.update({c.case_id: v for c, v in zip(members, ExplanationWriter().variants(picks))})
    checker = ClaimChecker(catalog)
    llm = load_model(settings.llm, home)
    # without a trained explainer adapter (none is shipped yet) the LoRA rows are left out: template vs base only
    adapter = resolve_adapter(settings.llm.explain_adapter, home)
    systems = {"template": None}
    backends = {"base": NO_ADAPTER}
    for name in ("base", "base_constrained"):
        systems[name] = Explainer(LocalBackend(llm, adapter=NO_ADAPTER), catalog, checker=checker,
                                  constrained=name.endswith("constrained"))
    if adapter is not None:
        attach_adapter(llm, "explain", adapter)
        backends[SERVED] = "explain"
        systems[SERVED] = Explainer(LocalBackend(llm, adapter="explain"), catalog, checker=checker, constrained=True)
    served_runtime = llm.runtime
    if adapter is not None and engine_for(llm) is not None:  # served on llama.cpp: the same explainer on torch too
        systems[TORCH] = systems[SERVED]
    if adapter is not None:
        systems[NO_STEPS_BACK] = Explainer(LocalBackend(llm, adapter="explain"), catalog, checker=checker,
                                           constrained=True)
        systems[NO_STEPS_BACK].backtracks = 0
    baseline = os.environ.get("MARQUEE_BENCH_EXPLAIN_BASELINE")
    if adapter is not None and baseline:
        attach_adapter(llm, "explain_baseline", resolve_adapter(baseline, home))
        backends[BASELINE] = "explain_baseline"
        systems[BASELINE] = Explainer(LocalBackend(llm, adapter="explain_baseline"), catalog, checker=checker,
                                      constrained=True)
    first = next(iter(grouped.values()))
    warm = systems.get(SERVED, systems["base"])
    measured = {}
    for name, explainer in systems.items():
        llm.runtime = "torch" if name == TORCH else served_runtime
        if explainer is not None:  # warm-up: the runtime's first call converts and loads what it needs
            explainer.explain([contexts[c.case_id] for c in first], [templates[c.case_id] for c in first])
        measured[name] = run_system(name, explainer, grouped, contexts, templates, alternatives)
    llm.runtime = served_runtime
    out: dict = {"heldout_replies": len(grouped), "heldout_triples": len(cases),
                 "adapter": f"[llm] explain_adapter = {settings.llm.explain_adapter!r}" if adapter is not None
                 else "none (no trained explainer adapter)",
                 **({"baseline_adapter": baseline} if BASELINE in systems else {}),
                 "load_avg_1m_at_start": round(os.getloadavg()[0], 2)}
    for name, m in measured.items():
        out[name] = figures(m, checker, contexts)
    if TORCH in measured:
        out["runtime"] = runtime_figures(measured[SERVED], measured[TORCH])
    if NO_STEPS_BACK in measured:
        out["steps_back"] = paired_figures(measured[SERVED], measured[NO_STEPS_BACK], checker, contexts)
    if BASELINE in measured:
        out["against_baseline"] = paired_figures(measured[SERVED], measured[BASELINE], checker, contexts)
    items = [c for c in build_describe_cases(dataset, ecfg.train_items, ecfg.heldout_items,
                                             seed=settings.finetune.seed) if c.split == "heldout"][:n_items]
    described = {}
    out["descriptions"] = {}
    for name, backend_adapter in backends.items():  # the base model free, the adapter as served
        writer = DescriptionWriter(LocalBackend(llm, adapter=backend_adapter), catalog, checker=checker,
                                   constrained=name in (SERVED, BASELINE))
        out["descriptions"][name], described[name] = describe_figures(writer, items, catalog)
    out["peak_rss_mb"] = peak_rss_mb()
    out["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    if in_checkout() and not quick and adapter is not None:
        write_samples(Path(__file__).parent / "results" / "explain-samples.md", measured, contexts, grouped,
                      np.random.default_rng(0), described)
    return out


def write_samples(path: Path, measured: dict, contexts: dict, grouped: dict, rng, described: dict) -> None:
    """Five example replies (template / base / LoRA side by side) and the audit sample of 50 shown LoRA sentences."""
    from agent.llm.pick_facts import fact_lines

    lines = ["# Explanations: examples and audit sample", "",
             "Written by `marquee bench explain` (benchmarks/explain.py) from held-out replies; the audit verdicts are",
             "in `benchmarks/results/eval-explain-audit.md`.", ""]
    reply_ids = list(grouped)
    chosen = [reply_ids[int(i)] for i in sorted(rng.choice(len(reply_ids), size=min(EXAMPLES, len(reply_ids)),
                                                           replace=False))]
    index = {name: {rows[0][0].reply_id: rows for rows in m.replies if rows} for name, m in measured.items()}
    for reply_id in chosen:
        case0 = grouped[reply_id][0]
        lines += [f"## {reply_id}: “{case0.request}”" + (f" (catalog user {case0.user_id})" if case0.user_id else ""),
                  ""]
        for n, case in enumerate(grouped[reply_id], start=1):
            ctx = contexts[case.case_id]
            lines.append(f"{n}. **{ctx.item.label}** ({', '.join(ctx.item.genres)})")
            for name in ("template", "base", "base_constrained", SERVED):
                _, text, source, draft, _ = index[name][reply_id][n - 1]
                shown = text if name == "template" else f"{text} *[{source}]*"
                lines.append(f"   - {name}: {shown}")
                if name != "template" and source != "llm" and draft:
                    lines.append(f"     (model's rejected sentence: {draft})")
        lines.append("")
    shown = [(rows[n][0], rows[n][1]) for rows in measured[SERVED].replies for n in range(len(rows))
             if rows[n][2] == "llm"]
    picked = [shown[int(i)] for i in sorted(rng.choice(len(shown), size=min(AUDIT, len(shown)), replace=False))] \
        if shown else []
    lines += ["## Audit sample: 50 shown LoRA explanations with their evidence", ""]
    for n, (case, text) in enumerate(picked, start=1):
        ctx = contexts[case.case_id]
        facts = " / ".join(fact_lines(ctx.evidence, ctx.item))
        lines += [f"{n}. `{case.case_id}` **{ctx.item.label}** ({', '.join(ctx.item.genres)}); request “{case.request}”",
                  f"   - sentence: {text}", f"   - evidence: {facts}", ""]
    lines += ["## Held-out item descriptions (LoRA, constrained)", ""]
    for label, text, ok, problems in described.get(SERVED, [])[:20]:
        lines.append(f"- **{label}**: {text}" + ("" if ok else f" — rejected: {'; '.join(problems[:2])}"))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":  # python -m benchmarks.explain [--quick] [--out DIR]
    from benchmarks.cli import main

    main("explain")
