"""`marquee finetune --ship`: a finished run replaces the default adapter in MARQUEE_HOME as one swap."""
from __future__ import annotations

import pytest

from agent.llm import loading
from finetune.training.card import SHIPPED_FILES
from finetune.training.trainer import ship


def _run(folder, tag: str):
    folder.mkdir(parents=True)
    for name in SHIPPED_FILES:
        (folder / name).write_text(f"{tag}:{name}")
    return folder


def test_ship_swaps_the_whole_adapter_into_home_and_the_loader_prefers_it(tmp_path):
    home = tmp_path / "home"
    dest = loading.home_adapter_dir(home)
    copied = ship(_run(tmp_path / "run1", "one"), dest)
    assert sorted(p.name for p in copied) == sorted(SHIPPED_FILES)
    assert (dest / "marquee.json").read_text() == "one:marquee.json"
    (dest / "stale-extra-file").write_text("from an older run")
    ship(_run(tmp_path / "run2", "two"), dest)
    assert sorted(p.name for p in dest.iterdir()) == sorted(SHIPPED_FILES)  # nothing of the old run is left
    assert {(dest / n).read_text() for n in SHIPPED_FILES} == {f"two:{n}" for n in SHIPPED_FILES}
    assert [p.name for p in dest.parent.iterdir()] == ["default"]  # no temporary folders left behind
    assert loading.resolve_adapter("default", home) == dest


def test_ship_refuses_an_unfinished_run_and_keeps_the_old_adapter(tmp_path):
    dest = tmp_path / "adapters" / "default"
    ship(_run(tmp_path / "good", "good"), dest)
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "adapter_config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="not a finished run"):
        ship(partial, dest)
    assert (dest / "adapter_config.json").read_text() == "good:adapter_config.json"
