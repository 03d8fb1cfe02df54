"""Outputs of `marquee finetune --task explain`: the adapter, `marquee.json`, the training curve and a Hugging Face
model card whose YAML metadata names the base model, the library and the data (finetune/training/card.py writes
the reranker's the same way)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from finetune.training.card import CURVE_JSON

TAGS = ("marquee", "recommender-system", "explanations", "lora", "rejection-sampling", "self-training")


def plot_curve(curve: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [p for p in curve if "loss" in p]
    val = [p["validation"] for p in curve if "validation" in p]
    rounds = [p for p in curve if "validation_pass_rate" in p]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        ax1.plot([p["step"] for p in train], [p["loss"] for p in train], label="train loss (answer tokens)")
    if val:
        ax1.plot([p["step"] for p in val], [p["loss"] for p in val], marker="o", label="validation loss")
    for p in rounds[1:]:
        ax1.axvline(p["step"], color="grey", ls=":")
    ax1.set_xlabel("optimizer step (rounds end at the dotted lines)")
    ax1.set_ylabel("cross-entropy")
    ax1.legend()
    if rounds:
        ax2.plot([p["round"] for p in rounds], [p["validation_pass_rate"] for p in rounds], marker="o")
    ax2.set_xlabel("round (0 = base model, serving prompt)")
    ax2.set_ylabel("claim-check pass rate, validation cases")
    ax2.set_ylim(0, 1)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _earlier_runs(meta: dict[str, Any]) -> list[dict]:
    """The runs this adapter continued from, oldest first (`started_from`, each with its own rounds)."""
    runs, at = [], meta.get("started_from")
    while at:
        runs.insert(0, at)
        at = at.get("started_from")
    return runs


def _rounds(meta: dict[str, Any], earlier: list[dict]) -> str:
    mine = len(meta["rounds"])
    before = sum(len(run.get("rounds", [])) for run in earlier)
    total = mine + before
    return f"{total} round{'s' if total != 1 else ''}" + (f" ({before} earlier, {mine} in this run)" if before else "")


def _round_row(r: dict, run: str) -> str:
    return (f"| {run}{r['round']} | {r['sampled_with']} | {r['temperature']:g} | {r['selection']['samples']} | "
            f"{r['selection']['pass_rate']:.1%} | {r['selection']['kept']} | {r['training_examples']} | "
            f"{r['validation']['pass_rate']:.1%} ({r['validation']['cases']}) |")


def model_card(meta: dict[str, Any], command: str) -> str:
    earlier = _earlier_runs(meta)
    rows = "\n".join([*(_round_row(r, f"run of {run.get('trained_at') or '?'}, round ")
                        for run in earlier for r in run.get("rounds", [])),
                       *(_round_row(r, "") for r in meta["rounds"])])
    constrained = ", constrained decoding" if meta["config"].get("constrained") else ""
    if earlier:
        start = (f"This run continued from the adapter trained {earlier[-1].get('trained_at') or '?'} (its rounds "
                 "are the first rows below) by expert iteration: each case also got the draft served decoding writes "
                 f"by stepping back from dead ends (up to {meta['config'].get('steps_back', 0)} times, "
                 "agent/llm/lookahead.py), so what the search finds becomes what the adapter writes without it.\n\n"
                 f"The adapter started from, with the serving prompt{constrained}: ")
    else:
        start = f"Base model with the serving prompt (before any training{constrained}): "
    config = "\n".join(f"{k} = {json.dumps(v)}" for k, v in meta["config"].items())
    return f"""# Marquee explainer LoRA adapter

LoRA adapter for `{meta['base_model']}` that writes the one-sentence explanation of a recommendation
(`agent.llm.explainer.Explainer`, prompt `prompts/explain.txt` version {meta['prompts']['explain']}) and catalog
descriptions (`marquee enrich`, prompt `prompts/describe.txt` version {meta['prompts']['describe']}) from a pick's
evidence: connections to titles the viewer loved, what it meets of the request, its rating and audience. Every
sentence it writes passes through the claim checker (`agent/llm/claims.py`) before anyone sees it; a rejected one
is replaced by the evidence template.

It is loaded beside the reranker's adapter on the same base model (peft multi-adapter, `set_adapter`), from
`<home>/adapters/explain/` or the copy shipped in the package (`agent/llm/adapters/explain/`).

- Trained: {meta['trained_at']} on {meta['machine']} ({meta['minutes']} min)
- Command: `{command}`

## How: rejection sampling (self-training), {_rounds(meta, earlier)}
Cases are replies of the chat itself on the **train split** of MovieLens-100k (per-user chronological
leave-one-out, docs/ARCHITECTURE.md §6), for users outside the held-out ones, to generated requests (the
request-conditioned benchmark's known-user requests plus anonymous sessions with liked titles, genre pairs, moods,
the family audience, decades and exclusions, some with text that tries to steer the model), and items to describe.
Round 1 samples from the base model with two worked examples in front of the prompt; later rounds sample from the
adapter with the serving prompt. {"Sampling is claim-constrained (`agent/llm/constrained.py`): tokens that would spell a word, number or phrase the pick's evidence does not support are masked, as in serving. " if meta["config"].get("constrained") else ""}Kept: sentences that pass the claim checker, cite personal evidence when the pick
has some, are not near-duplicates of the template or of each other, and whose sentence shape is not
over-represented. The adapter is trained on the kept sentences with the serving prompt (loss on the sentence
tokens; LoRA on the top layers).

{start}{meta['base_validation']['pass_rate']:.1%} of
{meta['base_validation']['cases']} validation sentences pass the claim checker of this run (validation sentences are
greedy, decoded as served without steps back; each run draws its own validation cases).

| round | sampled with | temperature | samples | claim check | kept | training set | validation pass rate (cases) |
|---|---|---|---|---|---|---|---|
{rows}

Validation cases are train-split cases never sampled for training. Held-out figures (users never used here, the
base model beside the adapter, latency): `marquee bench explain`, recorded in `benchmarks/RESULTS.md`.

Training curve: `training_curve.png`.

## Config (`[finetune.explain]`)
```toml
{config}
```
"""


def write_card(path: Path, text: str, base: str, catalog: str) -> None:
    from huggingface_hub import ModelCard

    data = ModelCard.load(path).data  # peft's card, written by save_pretrained (a local file)
    peft_tags = [t for t in data.tags or [] if not t.startswith("base_model:")]
    data.base_model = base
    data.library_name = "peft"
    data.pipeline_tag = data.pipeline_tag or "text-generation"
    data.language = ["en"]
    if not Path(catalog).suffix:
        data.datasets = [catalog]
    data.tags = sorted({*peft_tags, *TAGS, f"base_model:adapter:{base}"})
    front = data.to_yaml(original_order=["base_model", "library_name", "pipeline_tag", "language", "datasets"])
    ModelCard(f"---\n{front}\n---\n\n{text}").save(path)


def write_explain_outputs(out: Path, peft_model, meta: dict[str, Any], curve: list[dict], catalog: str,
                          command: str) -> None:
    """Adapter, marquee.json, curve (JSON + PNG) and card into `out`, each file replaced atomically."""
    from finetune.training.tasks.explain import SHIPPED

    out = Path(out)
    tmp = Path(tempfile.mkdtemp(prefix=".final-", dir=out))
    try:
        peft_model.save_pretrained(tmp, save_embedding_layers=False)
        (tmp / "marquee.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        (tmp / CURVE_JSON).write_text(json.dumps(curve, indent=1) + "\n", encoding="utf-8")
        plot_curve(curve, tmp / "training_curve.png", f"Explainer LoRA, {len(meta['rounds'])} rounds of rejection "
                                                       "sampling")
        write_card(tmp / "README.md", model_card(meta, command), meta["base_model"], catalog)
        for name in (*SHIPPED, CURVE_JSON):
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
