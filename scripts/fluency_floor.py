"""Where the explainer's fluency floor (agent/llm/explainer.py MIN_TOKEN_LOGPROB) comes from: explain train-split
replies (never the held-out ones `marquee bench explain` measures) with the shipped adapter and claim-constrained
decoding, and print each checker-passing sentence with the lowest log-probability the model gave one of its tokens,
lowest first, so the floor can be set where garbled sentences stop.

    MARQUEE_HOME=/tmp/m .venv/bin/python scripts/fluency_floor.py [replies]
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(n_replies: int = 12) -> None:
    from agent.llm.backend import LocalBackend
    from agent.llm.claims import ClaimChecker
    from agent.llm.explainer import Explainer
    from agent.llm.loading import attach_adapter, load_model, resolve_adapter
    from agent.llm.pick_facts import explain_fields
    from finetune.data.explain_cases import build_cases, replies
    from retrieval.catalog import load_dataset
    from retrieval.config import Settings

    home = Path(os.environ.get("MARQUEE_HOME") or tempfile.mkdtemp(prefix="marquee-floor-"))
    settings = Settings.load(home=home)
    dataset = load_dataset(settings.catalog, settings.data_dir)
    catalog, ecfg = dataset.catalog, settings.finetune.explain
    cases = [c for c in build_cases(settings, dataset, train_replies=n_replies, heldout_replies=0,
                                    seed=settings.finetune.seed + 1, heldout_users=ecfg.heldout_users,
                                    log=lambda m: None) if c.split == "train"]
    llm = load_model(settings.llm, home)
    attach_adapter(llm, "explain", resolve_adapter(settings.llm.explain_adapter, home))
    explainer = Explainer(LocalBackend(llm, adapter="explain"), catalog, checker=ClaimChecker(catalog))
    rows = []
    for members in replies(cases).values():
        picks = [c.context(catalog) for c in members]
        limits = explainer.constraints([(p.item, p.evidence) for p in picks])
        for draft in explainer.write("explain", [explain_fields(p) for p in picks], distinct=True, constraints=limits):
            pick = picks[draft.index]
            if draft.text and explainer.checker.check_claims(draft.text, pick.item, pick.evidence,
                                                             pick.asked_genres).ok:
                rows.append((draft.worst_logprob, draft.text))
    for worst, text in sorted(rows):
        print(f"{worst:7.2f}  {text}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
