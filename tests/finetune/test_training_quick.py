"""`marquee finetune --quick` end to end in a temp home: outputs (Hugging Face-standard adapter folder + card),
accelerate checkpoints and resume, adapter round trip (real model)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick_run(shared_home, tmp_path_factory):
    """One quick training (4 steps) and a resumed continuation to 6 steps, in a fresh MARQUEE_HOME that only
    borrows the converted base model (conversion is shared by the whole test session)."""
    from agent.cli import build
    from agent.llm.loading import convert_embedded

    model_dir = convert_embedded(shared_home)
    home = tmp_path_factory.mktemp("finetune-home")
    (home / "models").mkdir()
    (home / "models" / model_dir.name).symlink_to(model_dir, target_is_directory=True)
    out = home / "adapters" / "quick"
    env = {"MARQUEE_HOME": str(home), "HF_HUB_OFFLINE": "1", "MARQUEE_CONFIG": str(home / "absent.toml")}
    app, runner = build(), CliRunner()
    first = runner.invoke(app, ["finetune", "--quick", "--out", str(out)], env=env)
    assert first.exit_code == 0, first.output
    snapshot = {"marquee": json.loads((out / "marquee.json").read_text()),
                "curve": json.loads((out / "training_curve.json").read_text()),
                "checkpoints": sorted(p.name for p in (out / "checkpoints").glob("step-*")),
                "scheduler": _scheduler_state(out / "checkpoints" / "step-000004")}
    resumed = runner.invoke(app, ["finetune", "--quick", "--out", str(out), "--resume", "--max-steps", "6"], env=env)
    assert resumed.exit_code == 0, resumed.output
    return {"home": home, "out": out, "first": first, "resumed": resumed, "snapshot": snapshot}


def _optimizer_state(checkpoint) -> dict:
    import torch

    return torch.load(checkpoint / "optimizer.bin", map_location="cpu", weights_only=True)  # tensors + numbers


def _scheduler_state(checkpoint) -> dict:
    import torch

    return torch.load(checkpoint / "scheduler.bin", map_location="cpu", weights_only=True)


def test_quick_run_writes_adapter_meta_card_and_curve(quick_run):
    out, meta = quick_run["out"], quick_run["snapshot"]["marquee"]
    for name in ("adapter_model.safetensors", "adapter_config.json", "marquee.json", "README.md",
                 "training_curve.png"):
        assert (out / name).is_file(), name
    assert (out / "training_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert meta["fusion_weight"] in [0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0]
    assert meta["retriever"] == "ease" and "labels" not in meta  # the segment scorer reads no label tokens
    assert meta["scorer"] == "segments" and meta["prompt"] == "rerank_segments" and meta["prompt_version"]
    by_weight = meta["validation"]["by_weight"]
    assert by_weight[str(meta["fusion_weight"])] == max(by_weight.values())  # the tuned w is the grid's best
    assert by_weight["0.0"] == pytest.approx(meta["validation"]["retriever_ndcg@10"])  # w = 0: the retriever
    card = (out / "README.md").read_text()
    assert "marquee finetune --quick" in card and "logical CPUs" in card and "leave-one-out" in card
    assert "cached the frozen layers" in quick_run["first"].output  # the --quick overlay trains through the cache
    assert quick_run["snapshot"]["checkpoints"] == ["step-000002", "step-000004"]
    train_points = [p for p in quick_run["snapshot"]["curve"] if "loss" in p]
    assert [p["step"] for p in train_points] == [1, 2, 3, 4]
    assert all(np.isfinite(p["loss"]) and p["loss"] > 0 for p in train_points)


def test_resume_continues_the_step_count(quick_run):
    assert "resumed from step-000004" in quick_run["resumed"].output
    curve = json.loads((quick_run["out"] / "training_curve.json").read_text())
    train_points = [p for p in curve if "loss" in p]
    assert [p["step"] for p in train_points] == [1, 2, 3, 4, 5, 6]
    assert train_points[:4] == [p for p in quick_run["snapshot"]["curve"] if "loss" in p]  # history kept
    assert json.loads((quick_run["out"] / "marquee.json").read_text())["steps"] == 6
    assert (quick_run["out"] / "checkpoints" / "step-000006" / "trainer_state.json").is_file()


def test_resume_continues_the_saved_optimizer_and_schedule(quick_run):
    """A resumed run restores AdamW's moments and the LR schedule from the checkpoint (accelerate load_state):
    after 2 more steps they count 6 steps, not 2 as a fresh optimizer / schedule would."""
    checkpoints = quick_run["out"] / "checkpoints"
    before, after = quick_run["snapshot"]["scheduler"], _scheduler_state(checkpoints / "step-000006")
    assert before["last_epoch"] == 4 and after["last_epoch"] == 6
    assert after["base_lrs"] == before["base_lrs"]
    adam = _optimizer_state(checkpoints / "step-000006")["state"]
    assert adam and {int(s["step"]) for s in adam.values()} == {6}
    assert not list(checkpoints.glob(".*"))  # no temporary checkpoint folders left behind


def test_training_changes_the_lora_weights(quick_run):
    from safetensors.torch import load_file

    saved = load_file(str(quick_run["out"] / "checkpoints" / "step-000006" / "adapter_model.safetensors"))
    lora_b = [v for k, v in saved.items() if "lora_B" in k]
    assert lora_b and any(float(v.abs().max()) > 0 for v in lora_b)  # B starts at zero; training moved it


def test_adapter_folder_follows_hugging_face_conventions(quick_run):
    """adapter_config.json names the hub id (not this machine's folder); the card's YAML metadata is peft's,
    extended; serving loads the folder with the id resolved to the local embedded model."""
    from huggingface_hub import metadata_load

    from agent.llm.loading import EMBEDDED_HUB_ID, load_model_uncached

    out = quick_run["out"]
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == EMBEDDED_HUB_ID and config["peft_type"] == "LORA"
    card = metadata_load(out / "README.md")  # the YAML front matter, parsed
    assert card["base_model"] == EMBEDDED_HUB_ID and card["library_name"] == "peft"
    assert card["pipeline_tag"] == "text-generation" and card["datasets"] == ["movielens-100k"]
    assert {"lora", "marquee", f"base_model:adapter:{EMBEDDED_HUB_ID}"} <= set(card["tags"])
    assert not any(str(quick_run["home"]) in tag for tag in card["tags"])
    assert "# Marquee reranker LoRA adapter" in (out / "README.md").read_text()
    assert json.loads((out / "marquee.json").read_text())["base_model"] == EMBEDDED_HUB_ID
    loaded = load_model_uncached(EMBEDDED_HUB_ID, quick_run["home"], adapter=out)  # the id as a model name
    assert loaded.model.get_base_model().name_or_path == str(quick_run["home"] / "models" / "smollm2-135m")


def test_saved_adapter_reproduces_the_training_time_validation(quick_run):
    """Reload the shipped files the way serving does; the reranker's validation figures must be identical."""
    from agent.llm.backend import LocalBackend
    from agent.llm.loading import load_model_uncached
    from finetune.data.instructions import fit_retriever
    from finetune.data.splits import leave_one_out
    from finetune.training.config import QUICK
    from finetune.training.trainer import _select
    from finetune.training.validation import ValidationSet, validate
    from retrieval.catalog import load_dataset
    from retrieval.config import Settings

    home, out = quick_run["home"], quick_run["out"]
    meta = json.loads((out / "marquee.json").read_text())
    settings = Settings.load(None, home=home, finetune=QUICK)
    cfg = settings.finetune
    dataset = load_dataset(settings.catalog, home)
    split = leave_one_out(dataset.interactions)
    users = _select(split.evaluated_users, cfg.max_users, cfg.seed)
    retriever = fit_retriever(cfg.retriever, split, dataset, home)
    tune = ValidationSet.build(split, retriever, cfg.candidates, _select(users, cfg.tune_users, cfg.seed + 2))
    llm = load_model_uncached("smollm2-135m", home, adapter=out)
    assert llm.adapter_meta["fusion_weight"] == meta["fusion_weight"]
    result = validate(LocalBackend(llm), dataset.catalog, tune, cfg.fusion_grid, meta["calibrate"],
                      scorer=meta["scorer"], fusion=meta["fusion"])
    assert {str(w): v for w, v in result.by_weight.items()} == meta["validation"]["by_weight"]
    assert result.llm_only == meta["validation"]["llm_only_ndcg@10"]


def test_bad_config_and_missing_checkpoint_are_reported(tmp_path):
    from agent.cli import build

    bad = tmp_path / "marquee.toml"
    bad.write_text("[finetune]\nlora_rank = 0\n")
    result = CliRunner().invoke(build(), ["finetune", "--config", str(bad)], env={"MARQUEE_HOME": str(tmp_path)})
    assert result.exit_code == 2 and "lora_rank must be ≥ 1" in result.output
    result = CliRunner().invoke(build(), ["finetune", "--quick", "--retriever", "llm-lora"],
                                env={"MARQUEE_HOME": str(tmp_path), "MARQUEE_CONFIG": str(tmp_path / "x.toml")})
    assert result.exit_code == 2 and "reranker" in result.output
