"""Checkpoints through accelerate (finetune.training.checkpoints) on a tiny LoRA model: a run stopped after a
checkpoint and resumed in fresh objects ends exactly where an uninterrupted run ends, because the LoRA weights,
AdamW moments, the LR schedule's position and the RNG (LoRA dropout) all come back."""
from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from finetune.training.checkpoints import (CHECKPOINTS, STATE_FILE, latest_checkpoint, load_checkpoint,
                                           register_adapter_hooks, save_checkpoint)
from finetune.training.trainer import lr_factor

TOTAL, STOP = 8, 5  # optimizer steps of the whole run; the interrupted run stops after STOP


@dataclass
class Progress:
    step: int = 0
    note: str = ""


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.up, self.down = nn.Linear(6, 12), nn.Linear(12, 3)

    def forward(self, x):
        return self.down(torch.relu(self.up(x)))


def setup():
    """Fresh accelerator, seeded LoRA model (dropout draws from torch's RNG), AdamW and a cosine schedule."""
    from accelerate import Accelerator
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(Tiny(), LoraConfig(r=2, lora_alpha=4, lora_dropout=0.5, target_modules=["up", "down"]))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, 2, TOTAL, "cosine"))
    accelerator = Accelerator(cpu=True, step_scheduler_with_optimizer=False)
    prepared, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    register_adapter_hooks(accelerator, accelerator.unwrap_model(prepared))
    return accelerator, prepared, optimizer, scheduler


def train_steps(model, optimizer, scheduler, start: int, stop: int) -> None:
    model.train()
    for step in range(start, stop):
        data = torch.Generator().manual_seed(step)  # the batch depends on the step only
        x, y = torch.randn(16, 6, generator=data), torch.randint(0, 3, (16,), generator=data)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()


def lora_weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters() if "lora_" in k}


@pytest.fixture(scope="module")
def uninterrupted():
    _, model, optimizer, scheduler = setup()
    train_steps(model, optimizer, scheduler, 0, TOTAL)
    return lora_weights(model)


def test_resumed_run_continues_from_the_saved_optimizer_and_schedule(tmp_path, uninterrupted):
    accelerator, model, optimizer, scheduler = setup()
    train_steps(model, optimizer, scheduler, 0, STOP)
    path = save_checkpoint(accelerator, tmp_path, Progress(step=STOP, note="kept"), keep=2)
    saved_lr = scheduler.get_last_lr()

    # A new process, in effect: fresh weights and moments, the RNG back at the seed (LoRA dropout needs the saved one)
    accelerator, model, optimizer, scheduler = setup()
    state = load_checkpoint(accelerator, path, Progress)
    assert state == Progress(step=STOP, note="kept")
    assert scheduler.scheduler.last_epoch == STOP and scheduler.get_last_lr() == saved_lr
    moments = [optimizer.state[p]["exp_avg"] for group in optimizer.param_groups for p in group["params"]]
    assert moments and all(m.abs().sum() > 0 for m in moments)  # AdamW moments restored, not zero-initialised
    train_steps(model, optimizer, scheduler, STOP, TOTAL)
    resumed = lora_weights(model)
    assert resumed.keys() == uninterrupted.keys()
    for name, weight in uninterrupted.items():
        torch.testing.assert_close(resumed[name], weight, rtol=0, atol=1e-7, msg=name)


def test_without_restored_state_the_run_diverges(uninterrupted):
    """The check above can fail: resuming with the weights alone (fresh optimizer, schedule at 0) differs."""
    accelerator, model, optimizer, scheduler = setup()
    train_steps(model, optimizer, scheduler, 0, STOP)
    weights = lora_weights(model)
    _, model, optimizer, scheduler = setup()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in weights:
                param.copy_(weights[name])
    train_steps(model, optimizer, scheduler, STOP, TOTAL)
    assert any(not torch.allclose(lora_weights(model)[n], w) for n, w in uninterrupted.items())


def test_checkpoint_folder_is_an_adapter_and_old_ones_are_pruned(tmp_path):
    from safetensors.torch import load_file

    accelerator, model, optimizer, scheduler = setup()
    for step in (1, 2, 3):
        train_steps(model, optimizer, scheduler, step - 1, step)
        save_checkpoint(accelerator, tmp_path, Progress(step=step), keep=2)
    folders = sorted(p.name for p in (tmp_path / CHECKPOINTS).iterdir())
    assert folders == ["step-000002", "step-000003"]  # no temporary folders left, the oldest pruned
    latest = latest_checkpoint(tmp_path)
    assert latest.name == "step-000003" and json.loads((latest / STATE_FILE).read_text())["step"] == 3
    assert {"adapter_config.json", "adapter_model.safetensors", "optimizer.bin", "scheduler.bin"} <= {
        p.name for p in latest.iterdir()}
    assert not list(latest.glob("model*.safetensors"))  # the frozen base weights are not copied into checkpoints
    saved = load_file(str(latest / "adapter_model.safetensors"))
    assert saved and all("lora_" in k for k in saved)
    (latest / STATE_FILE).unlink()  # an incomplete folder is not a checkpoint
    assert latest_checkpoint(tmp_path).name == "step-000002"
