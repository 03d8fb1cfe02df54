"""scripts/train_gpu.sh end to end on this CPU: the model split into checksummed parts (< 60 MiB each, one per
device transfer), parts received over several calls, a corrupt part refused, joined and verified, then
`accelerate launch --cpu` on a tiny slice (the GPU config under --quick) and the eval rows, results in $OUT."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "train_gpu.sh"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def sh(*args, env, check=True):
    done = subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1500)
    if check:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_prepare_receive_join_and_a_tiny_cpu_run(tmp_path, shared_home):
    from agent.llm.loading import convert_embedded, embedded_gguf_path

    gpu = tmp_path / "gpu"
    env = {**os.environ, "GPU_DIR": str(gpu), "WHEELS": "0", "PARTS": "3", "PYTHON": sys.executable,
           "OUT": str(tmp_path / "out"), "EVAL_USERS": "2"}
    env.pop("MARQUEE_HOME", None)
    prepared = sh("prepare", env=env)
    parts = sorted(gpu.glob(f"part-*/{GGUF}.part-*"))
    assert len(parts) == 3 and all(p.stat().st_size < 60 * 2**20 for p in parts)
    assert 'run(command="scripts/train_gpu.sh run"' in prepared.stderr
    joined = b"".join(p.read_bytes() for p in parts)
    assert hashlib.sha256(joined).hexdigest() == hashlib.sha256(embedded_gguf_path().read_bytes()).hexdigest()
    assert (gpu / "base/site/recbole/dataset_example/ml-100k/ml-100k.inter").is_file()

    # the device receives one part per call; a part damaged in transit is refused
    moved = {p: tmp_path / p.name for p in parts[1:]}
    for src, dst in moved.items():
        src.rename(dst)
    first = sh("receive", env=env)
    assert "have 1 of 3 parts" in first.stderr
    early = sh("run", "--cpu", "--tiny", env=env, check=False)
    assert early.returncode != 0 and "not every part has arrived" in early.stderr
    for src, dst in moved.items():
        dst.rename(src)
    original = parts[1].read_bytes()
    parts[1].write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    bad = sh("receive", env=env, check=False)
    assert bad.returncode != 0 and "corrupt" in bad.stderr
    parts[1].write_bytes(original)
    (gpu / "store" / parts[1].name).write_bytes(original)

    # reuse the session's converted model (de-quantising takes a minute); the joined file is still verified
    (gpu / "home" / "models").mkdir(parents=True)
    (gpu / "home" / "models" / "smollm2-135m").symlink_to(convert_embedded(shared_home), target_is_directory=True)
    run = sh("run", "--cpu", "--tiny", env=env)
    assert "model joined and verified" in run.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "eval.log", "marquee.json", "report.json",
                                                     "report.md", "train.log", "training_curve.png"]
    meta = json.loads((out / "marquee.json").read_text())
    assert meta["fusion"] == "residual" and meta["loss"] == "distill" and meta["distill_temperature"] > 0
    report = (out / "report.md").read_text()
    for row in ("| ease |", "llm-lora@student", "llm-lora@fused", "llm-lora@no-gate"):
        assert row in report
    assert "accelerate.commands.launch" in run.stderr and "--cpu" in run.stderr
