"""Re-check the manually audited explanations with the current claim checker (agent/llm/claims.py).

    .venv/bin/python scripts/recheck_explain_audit.py [--cache /tmp/explain-cases.json] [--verbose]

Each audit (benchmarks/results/eval-explain-audit.md, one table per bench run) read 50 shown LoRA sentences of
`marquee bench explain` against their evidence (benchmarks/results/explain-samples.md, section "Audit sample", of
that run) and gave each a verdict: supported, awkward (no false fact) or unsupported. This rebuilds the same held-out cases as the benchmark (finetune's
`build_cases`, about 5 CPU-minutes; `--cache` keeps them for the next run), checks every audited sentence with its
real evidence, and reports how many of each verdict the checker passes; then the pass rate of the template
explanations (agent/llm/evidence_text.py) on every held-out pick, at the checker's 12–40 words and without a length
limit. A checker change should reject every "unsupported" row and keep the others and the templates passing.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
from collections import Counter
from pathlib import Path

from agent.llm.claims import ClaimChecker
from agent.llm.evidence_text import ExplanationWriter
from finetune.data.explain_cases import ExplainCase, build_cases, replies
from retrieval.catalog import load_dataset
from retrieval.config import Settings
from retrieval.evidence import Evidence

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"
HELDOUT_REPLIES = 64  # as `marquee bench explain` (benchmarks/explain.py)


def audited() -> list[tuple[str, int, str, str, str]]:
    """(audit, row, case id, verdict: supported / awkward / unsupported, sentence) of every audit table; each audit
    keeps its sentences in its own table (explain-samples.md holds only the latest run's sample)."""
    rows, audit = [], "2026-12-01 10:30"
    for line in (RESULTS / "eval-explain-audit.md").read_text(encoding="utf-8").splitlines():
        heading = re.match(r"## Audit of the (.+?) bench", line)
        if heading:
            audit = heading.group(1)
        m = re.match(r"\| (\d+) \| `([^`]+)` \| [^|]* \| ([^|]*) \| ([^|]*) \|$", line)
        if m:
            verdict = m.group(4).strip().strip("*")
            kind = next(k for k in ("unsupported", "awkward", "supported") if verdict.startswith(k))
            rows.append((audit, int(m.group(1)), m.group(2), kind, m.group(3).strip()))
    return rows


def held_out_cases(settings, dataset, cache: Path | None) -> list[ExplainCase]:
    if cache is not None and cache.exists():
        return [ExplainCase.from_json(row) for row in json.loads(cache.read_text(encoding="utf-8"))]
    cases = build_cases(settings, dataset, train_replies=0, heldout_replies=HELDOUT_REPLIES,
                        seed=settings.finetune.seed, heldout_users=settings.finetune.explain.heldout_users,
                        log=lambda m: None)
    if cache is not None:
        cache.write_text(json.dumps([c.to_json() for c in cases]), encoding="utf-8")
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, help="a JSON file to keep the rebuilt held-out cases in")
    parser.add_argument("--verbose", action="store_true", help="print every audited sentence with its verdict")
    args = parser.parse_args(argv)
    home = Path(os.environ.get("MARQUEE_HOME") or tempfile.mkdtemp(prefix="marquee-audit-"))
    settings = Settings.load(home=home)
    dataset = load_dataset(settings.catalog, settings.data_dir)
    catalog = dataset.catalog
    cases = held_out_cases(settings, dataset, args.cache)
    by_id = {c.case_id: c for c in cases}
    checker = ClaimChecker(catalog)

    tally: Counter[tuple[str, str, bool]] = Counter()
    for audit, row, case_id, verdict, text in audited():
        ctx = by_id[case_id].context(catalog)
        got = checker.check_claims(text, ctx.item, ctx.evidence, ctx.asked_genres, min_words=0, max_words=10_000)
        tally[(audit, verdict, got.ok)] += 1
        if args.verbose or got.ok == (verdict == "unsupported"):
            print(f"[{audit}] {row:2d} {verdict:11s} {'passes' if got.ok else 'rejected'}: {text}")
            for problem in got.problems:
                print(f"      - {problem}")
    for audit in dict.fromkeys(a for a, _, _ in tally):
        for verdict in ("unsupported", "supported", "awkward"):
            total = tally[(audit, verdict, True)] + tally[(audit, verdict, False)]
            print(f"audit of {audit}, {verdict}: {tally[(audit, verdict, False)]} of {total} rejected, "
                  f"{tally[(audit, verdict, True)]} pass")

    passed = unlimited = total = 0
    for members in replies(cases).values():
        picks = [(catalog[c.item_id], Evidence.model_validate(c.evidence)) for c in members]
        for case, (item, evidence), text in zip(members, picks, ExplanationWriter().write(picks)):
            total += 1
            passed += checker.check_claims(text, item, evidence, case.asked_genres).ok
            free = checker.check_claims(text, item, evidence, case.asked_genres, min_words=0, max_words=10_000)
            unlimited += free.ok
            if not free.ok:
                print(f"template of {case.case_id} rejected: {text} {list(free.problems)}")
    print(f"templates on {total} held-out picks: {passed / total:.1%} pass (12–40 words), "
          f"{unlimited / total:.1%} without the length limit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
