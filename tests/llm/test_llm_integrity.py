"""The converted LLM in MARQUEE_HOME, damaged: loading notices, moves it aside and converts it again.

(`marquee doctor` reporting it, and the other kept files: tests/agent/test_kept_files.py.)
"""
from __future__ import annotations

import logging
import shutil

import pytest

from agent.llm import loading


def garble(path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))


@pytest.mark.slow
def test_loading_a_garbled_converted_model_converts_it_again(llm, shared_home, tmp_path, caplog):
    """The real converted model, one stretch of its weights overwritten (the size and header stay valid):
    the load notices, moves it aside, converts again, and the model is the original one."""
    import torch

    home = tmp_path / "home"
    shutil.copytree(shared_home / "models" / "smollm2-135m", home / "models" / "smollm2-135m")
    garble(home / "models" / "smollm2-135m" / "model.safetensors")
    with caplog.at_level(logging.WARNING, logger="agent.llm.loading"):
        again = loading.load_model_uncached(home=home, adapter="none", dtype="float32")
    assert "is damaged" in caplog.text and "converting it again" in caplog.text
    assert list((home / "quarantine").glob("*/models/smollm2-135m/model.safetensors"))
    reference = llm.model.state_dict()
    assert all(torch.equal(reference[name].float(), weight.to(llm.dtype).float())  # every tensor, the garbled too
               for name, weight in again.model.state_dict().items())
    assert loading.model_folder_problem(home / "models" / "smollm2-135m") is None


