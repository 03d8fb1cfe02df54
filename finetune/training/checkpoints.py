"""Training checkpoints through `accelerate`: `save_state` / `load_state` plus the trainer's own progress.

A checkpoint is the folder `<out>/checkpoints/step-NNNNNN/`:
- `adapter_model.safetensors` + `adapter_config.json`: only the LoRA weights, saved by peft (a save-state hook
  replaces accelerate's full-model file, which would hold all 135M frozen base weights), so every checkpoint is
  also a loadable adapter;
- `optimizer.bin`, `scheduler.bin`, `random_states_<process>.pkl`: accelerate's own files (AdamW moments, the
  LR schedule's position, every RNG), restored by `load_state`;
- `trainer_state.json`: step, epoch, position in the epoch, best validation, the curve (`State`).
It is written under a temporary name and renamed when complete, so a crash never leaves a half checkpoint.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def register_adapter_hooks(accelerator, peft_model, scorer=None) -> None:
    """Make `save_state` / `load_state` store the LoRA weights of `peft_model` (unwrapped) instead of the whole
    model (the pattern of accelerate's `register_save_state_pre_hook` documentation), and the scorer's own
    trained parts (e.g. a score head, `Scorer.save_trainable`) beside them."""

    def save_adapter(models, weights, output_dir) -> None:
        if accelerator.is_main_process:
            peft_model.save_pretrained(output_dir, save_embedding_layers=False)
            if scorer is not None:
                scorer.save_trainable(output_dir)
        weights.clear()  # accelerate saves no model file

    def load_adapter(models, input_dir) -> None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(peft_model, load_file(str(Path(input_dir) / ADAPTER_WEIGHTS)))
        if scorer is not None:
            scorer.load_trainable(input_dir)
        models.clear()  # accelerate loads no model file

    accelerator.register_save_state_pre_hook(save_adapter)
    accelerator.register_load_state_pre_hook(load_adapter)


def save_checkpoint(accelerator, out: Path, state, keep: int) -> Path:
    """Every process calls this (accelerate saves each process's RNG); the main one finishes the folder."""
    folder = Path(out) / CHECKPOINTS
    path = folder / f"step-{state.step:06d}"
    tmp = folder / f".{path.name}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / STATE_FILE).write_text(json.dumps(dataclasses.asdict(state), indent=1) + "\n", encoding="utf-8")
        old = folder / f".{path.name}.old"
        if path.exists():  # the same step saved again (e.g. after the last validation): the newer one wins
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
        for stale in checkpoints(out)[:-keep]:
            shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()
    return path


def checkpoints(out: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    return sorted(p for p in (Path(out) / CHECKPOINTS).glob("step-*") if (p / STATE_FILE).is_file())


def latest_checkpoint(out: Path) -> Path | None:
    found = checkpoints(out)
    return found[-1] if found else None


def load_checkpoint(accelerator, path: Path, state_type):
    """Restore adapter, optimizer, scheduler and RNGs into the prepared objects; returns the trainer's state."""
    accelerator.load_state(str(path))
    return state_type(**json.loads((Path(path) / STATE_FILE).read_text(encoding="utf-8")))
