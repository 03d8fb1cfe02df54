"""Outputs of a finished run: the adapter (safetensors), `marquee.json` (what the reranker reads), the training
curve (JSON + PNG) and a model card README.md saying what was trained, on what, how, where and how well.

The adapter folder follows the Hugging Face conventions: `adapter_config.json` names the base model by its hub id
(`agent.llm.loading.base_model_id`), and the card keeps peft's YAML metadata (base_model, library_name,
pipeline_tag, tags) with Marquee's additions, so hub tools and `PeftModel.from_pretrained` read it as usual."""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any

SHIPPED_FILES = ("adapter_model.safetensors", "adapter_config.json", "marquee.json", "README.md",
                 "training_curve.png")
CURVE_JSON = "training_curve.json"
CARD_TAGS = ("marquee", "recommender-system", "reranking", "lora")


def machine() -> str:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} logical CPUs{gpu}, torch {torch.__version__}"


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def adapter_meta(result, cfg, settings, scorer) -> dict[str, Any]:
    """marquee.json: what the reranker reads (scorer, fusion weight, …) and how the adapter was made; `scorer`
    (an `agent.llm.scorers.Scorer`) adds its prompt, prompt version and anything else it needs."""
    from agent.llm.loading import base_model_id

    final = result.final
    fusion = final.fusion_choice()
    return {
        "scorer": scorer.name,
        "fusion": fusion.kind,
        "fusion_weight": fusion.weight,
        **({"gate_margin": fusion.gate_margin, "gate_k": fusion.gate_k, "gate_coverage": final.gated[0]}
           if fusion.gate_margin is not None else {}),
        "calibrate": final.calibrate,
        "permutations": 1,
        "retriever": cfg.retriever,
        "retriever_params": cfg.retriever_params,
        "candidates": cfg.candidates,
        "history_items": cfg.history_items,
        **scorer.adapter_meta(),
        "base_model": base_model_id(settings.llm.model),
        "loss": cfg.loss,
        **({"distill_temperature": result.stats["distill"]["temperature"],
            "ce_weight": result.stats["distill"]["ce_weight"]} if result.stats.get("distill") else {}),
        "examples": result.stats.get("examples"),
        "cpu_minutes": result.stats.get("cpu_minutes"),
        "steps": result.state.step,
        "best_step": result.state.best_step,
        "validation": {"users": result.stats["tune_users"], **final.as_dict()},
        "trained_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
    }


def plot_curve(curve: list[dict], path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [p for p in curve if "loss" in p]
    val = [p["validation"] for p in curve if "validation" in p]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        ax1.plot([p["step"] for p in train], [p["loss"] for p in train], label="train loss")
        ax1.axhline(math.log(20), color="grey", ls=":", label="ln 20 (uniform over 20 labels)")
    ax1.set_xlabel("optimizer step")
    ax1.set_ylabel("cross-entropy")
    ax1.legend()
    if val:
        steps = [p["step"] for p in val]
        ax2.plot(steps, [p["fused_ndcg@10"] for p in val], marker="o", label="fused (best w)")
        ax2.plot(steps, [p["llm_only_ndcg@10"] for p in val], marker=".", label="LLM order alone")
        ax2.plot(steps, [p["retriever_ndcg@10"] for p in val], ls="--", color="grey", label="retriever alone")
    ax2.set_xlabel("optimizer step")
    ax2.set_ylabel("validation NDCG@10")
    ax2.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def model_card(result, cfg, meta: dict[str, Any], command: str) -> str:
    from agent.llm.scorers import scorer_class

    final, state, stats = result.final, result.state, result.stats
    scorer = scorer_class(meta["scorer"])
    rows = "\n".join(f"| {w:g} | {final.by_weight[w]:.4f} |" for w in sorted(final.by_weight))
    config = "\n".join(f"{k} = {json.dumps(v)}" for k, v in cfg.model_dump().items())
    return f"""# Marquee reranker LoRA adapter

LoRA adapter for `{meta['base_model']}`, scorer **{meta['scorer']}** of `agent.llm.reranker.LLMReranker`
(prompt `prompts/{meta['prompt']}.txt`, version {meta['prompt_version']}; {scorer.description}).
The reranker fuses {fusion_text(meta)} (tuned on validation; 0 would be the retriever `{cfg.retriever}` alone),
calibration {'on' if meta['calibrate'] else 'off'}. Training loss: {loss_text(meta)}.

- Trained: {meta['trained_at']} on {meta['machine']}
- Command: `{command}`
- Wall time: {result.seconds / 60:.1f} min; {state.step} optimizer steps; best validation at step {state.best_step};
  stopped by: {result.stopped}

## Data
MovieLens-100k, per-user chronological leave-one-out (docs/ARCHITECTURE.md §6: stable time sort, file order for
ties; last = test, second last = validation, rest = train). Training examples come from TRAIN only: each user's last
{cfg.targets_per_user} train positions are targets with the earlier items as history ({cfg.history_items} most recent
shown); candidates = the top {cfg.candidates} of `{cfg.retriever}` fitted on train without those targets (target
inserted when missed){scorer.training_order}.

{json.dumps(stats, indent=2)}

## Validation ({stats['tune_users']} validation users, full-ranking NDCG@10)
- retriever alone: {final.retriever:.4f}
- LLM order alone (top {cfg.candidates}): {final.llm_only:.4f}
- fused, best weight = {final.best_weight:g}: {final.best:.4f}
{gate_line(final)}
| weight | NDCG@10 |
|---|---|
{rows}

Training curve: `training_curve.png` (loss; validation NDCG@10 on {stats['validation_users']} users).
Test-split figures: run `marquee eval --rankers {cfg.retriever},llm-zeroshot,llm-lora` (see the project README).

## Config (`[finetune]`)
```toml
{config}
```
"""


def gate_line(final) -> str:
    if not final.by_gate:
        return ""
    cells = "; ".join(f"coverage {c:g}: " + ", ".join(f"{w:g} → {v:.4f}" for w, v in grid.items() if w > 0)
                      for c, (_, grid) in sorted(final.by_gate.items()))
    g = final.gated
    chosen = (f"chosen: coverage {g[0]:g}, weight {g[2]:g} → {g[3]:.4f}" if g else
              "no gated setting beat the ungated best: no gate")
    return f"- margin gate ({cells}); {chosen}\n"


def fusion_text(meta: dict[str, Any]) -> str:
    w = meta["fusion_weight"]
    if meta.get("fusion", "minmax") == "minmax":
        return f"`minmax(retriever score) + w × LLM log-prob` with **w = {w:g}**"
    gate = (f"; margin gate: the LLM acts only where the retriever's z-score gap between its best and its "
            f"{meta['gate_k']}th candidate is below {meta['gate_margin']:.3f} ({meta['gate_coverage']:.0%} of "
            f"validation lists)" if meta.get("gate_margin") is not None else "; no margin gate")
    return f"residually, `z(retriever) + g × z(LLM)` per list, with **g = {w:g}**{gate}"


def loss_text(meta: dict[str, Any]) -> str:
    if meta.get("loss") == "distill":
        return (f"KL(softmax(teacher / T) ‖ softmax(student)) over the candidates + λ × CE on the real next item, "
                f"T = {meta['distill_temperature']:g}, λ = {meta['ce_weight']:g} (teacher: the retriever)")
    return "cross-entropy of the softmax over the candidates on the real next item (CE only)"


def write_card(path: Path, text: str, meta: dict[str, Any], catalog: str) -> None:
    """Replace peft's card at `path` by `text` under peft's YAML metadata, corrected and extended."""
    from huggingface_hub import ModelCard

    data = ModelCard.load(path).data  # a local file (peft writes it in save_pretrained); never a hub lookup
    base = meta["base_model"]
    peft_tags = [t for t in data.tags or [] if not t.startswith("base_model:")]  # peft's names the local folder
    data.base_model = base
    data.library_name = "peft"
    data.pipeline_tag = data.pipeline_tag or "text-generation"
    data.language = ["en"]  # the prompts are English (requests in other languages are parsed before the LLM)
    if not Path(catalog).suffix:  # a named catalog (e.g. movielens-100k), not a path on this machine
        data.datasets = [catalog]
    data.tags = sorted({*peft_tags, *CARD_TAGS, f"base_model:adapter:{base}", f"scorer:{meta['scorer']}"})
    front = data.to_yaml(original_order=["base_model", "library_name", "pipeline_tag", "language", "datasets"])
    ModelCard(f"---\n{front}\n---\n\n{text}").save(path)


def write_outputs(result, cfg, settings, peft_model, scorer, command: str) -> None:
    """Write every deliverable into `result.out`, each file replaced atomically."""
    out = Path(result.out)
    meta = adapter_meta(result, cfg, settings, scorer)
    tmp = Path(tempfile.mkdtemp(prefix=".final-", dir=out))
    try:
        peft_model.save_pretrained(tmp, save_embedding_layers=False)  # the vocabulary is never changed
        scorer.save_trainable(tmp)
        (tmp / "marquee.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        (tmp / CURVE_JSON).write_text(json.dumps(result.state.curve, indent=1) + "\n", encoding="utf-8")
        plot_curve(result.state.curve, tmp / "training_curve.png",
                   f"LoRA reranker over {cfg.retriever} ({result.state.step} steps)")
        write_card(tmp / "README.md", model_card(result, cfg, meta, command), meta, settings.catalog.source)
        for name in (*SHIPPED_FILES, *scorer.extra_files, CURVE_JSON):
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
