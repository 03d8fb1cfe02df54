"""`marquee finetune --quick` in TWO processes (`accelerate launch`; on this CPU-only machine a gloo group):
the processes train one set of weights (DistributedDataParallel), and the adapter they write loads and scores.

`accelerate launch --cpu --num_processes 2` would start ONE process (accelerate's CPU launcher needs an MPI
hostfile for more); `--multi_gpu` starts the processes through torchrun, and on a machine without GPUs the
trainer's Accelerator(cpu=True) joins them in a gloo group (README "Scaling out")."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_two_processes_train_one_adapter_that_loads_and_scores(shared_home, tmp_path):
    from agent.llm.backend import LocalBackend
    from agent.llm.loading import convert_embedded, load_model_uncached
    from benchmarks.web_driver import free_port
    from finetune.data.instructions import fit_retriever
    from finetune.data.splits import leave_one_out
    from finetune.training.config import QUICK
    from finetune.training.trainer import _select
    from finetune.training.validation import ValidationSet, validate
    from retrieval.catalog import load_dataset
    from retrieval.config import Settings

    model_dir = convert_embedded(shared_home)  # a fresh home that borrows the converted base model
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    (home / "models" / model_dir.name).symlink_to(model_dir, target_is_directory=True)
    out = home / "adapters" / "two-processes"
    env = {**os.environ, "MARQUEE_HOME": str(home), "HF_HUB_OFFLINE": "1", "MARQUEE_CONFIG": str(home / "absent.toml")}
    command = [str(Path(sys.executable).with_name("accelerate")), "launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()),
               "-m", "finetune.training.cli", "--quick", "--max-steps", "2", "--out", str(out)]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stderr[-4000:]
    log = run.stderr + run.stdout
    assert {p for p in re.findall(r"process (\d) of 2 \(MULTI_CPU, gloo backend\) on cpu", log)} == {"1", "2"}
    # each process trained on its own half of the examples, yet both end with the same weights
    assert re.findall(r"cached the frozen layers 0-\d+ of (\d+) examples", log) == ["16", "16"]
    digests = dict(re.findall(r"process (\d) of 2: trained LoRA weights sha256 (\w+) after 2 steps", log))
    assert set(digests) == {"1", "2"} and digests["1"] == digests["2"]

    from safetensors.torch import load_file

    trained = load_file(str(out / "checkpoints" / "step-000002" / "adapter_model.safetensors"))
    assert any(float(v.abs().max()) > 0 for k, v in trained.items() if "lora_B" in k)  # B starts at zero

    meta = json.loads((out / "marquee.json").read_text())
    assert meta["steps"] == 2 and meta["scorer"] == "segments"
    llm = load_model_uncached("smollm2-135m", home, adapter=out)  # the way serving loads an adapter
    settings = Settings.load(None, home=home, finetune=QUICK)
    cfg = settings.finetune
    dataset = load_dataset(settings.catalog, home)
    split = leave_one_out(dataset.interactions)
    users = _select(split.evaluated_users, cfg.max_users, cfg.seed)
    tune = ValidationSet.build(split, fit_retriever(cfg.retriever, split, dataset, home), cfg.candidates,
                               _select(users, cfg.tune_users, cfg.seed + 2))
    result = validate(LocalBackend(llm), dataset.catalog, tune, cfg.fusion_grid, meta["calibrate"],
                      scorer=meta["scorer"], fusion=meta["fusion"])
    assert {str(w): v for w, v in result.by_weight.items()} == meta["validation"]["by_weight"]  # it scores as trained
