"""Every other file Marquee keeps in MARQUEE_HOME, damaged: `doctor` names it with the fix, `doctor --repair`
moves it aside (never deletes) and serving recovers or fails with the fix; never silently wrong.

The search index has its own tests (tests/retrieval/test_store_integrity.py); marquee.db has its own.
"""
from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import build
from agent.llm import loading
from retrieval.catalog.descriptions import DescriptionRecord, append_descriptions, descriptions_path
from retrieval.catalog.errors import CatalogError
from retrieval.integrity import write_manifest


@pytest.fixture(scope="module")
def app():
    return build()


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    for key, value in {"MARQUEE_HOME": str(home), "MARQUEE_CONFIG": str(tmp_path / "absent.toml"),
                       "MARQUEE_CHROMA_URL": "", "MARQUEE_STORE__CHROMA_URL": ""}.items():
        monkeypatch.setenv(key, value)
    return home


def doctor(app, *args) -> tuple[int, dict, dict]:
    result = CliRunner().invoke(app, ["doctor", "--json", *args], catch_exceptions=False)
    payload = json.loads(result.stdout)
    return result.exit_code, {c["name"]: c for c in payload["checks"]}, payload


def quarantined(home: Path, relative: str) -> list[Path]:
    return list((home / "quarantine").glob(f"*/{relative}"))


def damage(path: Path, how: str) -> None:
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2 + 7])  # mid-line, mid-record
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbled":
        data = bytearray(path.read_bytes())
        middle = len(data) // 2
        data[middle:middle + 64] = b"\xff" * min(64, len(data) - middle)
        path.write_bytes(bytes(data))
    else:
        raise ValueError(how)


def test_an_intact_home_passes(app, home):
    code, checks, _ = doctor(app)
    assert checks["kept files"]["ok"] and code == 0


# ------------------------------------------------------------------------------------- descriptions


@pytest.mark.parametrize("how", ["truncated", "garbled"])
def test_damaged_descriptions_fail_clearly_and_repair_keeps_the_good_rows(app, home, ml100k, how):
    from retrieval.catalog import load_dataset
    from retrieval.config import CatalogConfig

    path = descriptions_path(home, ml100k.catalog.name)
    append_descriptions(path, [DescriptionRecord(str(i), f"Story number {i} of a long night.") for i in range(1, 9)])
    damage(path, how)
    with pytest.raises(CatalogError, match=r"malformed description row.*marquee doctor --repair"):
        load_dataset(CatalogConfig(), home)  # serving fails with the fix: no silently missing descriptions
    code, checks, _ = doctor(app)
    assert code == 1 and not checks["descriptions"]["ok"] and "keeps the good rows" in checks["descriptions"]["fix"]
    original = path.read_bytes()
    code, checks, payload = doctor(app, "--repair")
    assert code == 0 and checks["kept files"]["ok"], payload
    assert any("kept" in line and "good rows" in line for line in payload["repaired"])
    assert quarantined(home, f"catalogs/{ml100k.catalog.name}/descriptions.jsonl")[0].read_bytes() == original
    catalog = load_dataset(CatalogConfig(), home).catalog
    kept = [i for i in map(str, range(1, 9)) if catalog[i].description_generated]
    assert 1 <= len(kept) < 8 and all(catalog[i].description == f"Story number {i} of a long night." for i in kept)


@pytest.mark.parametrize("how", ["empty", "deleted"])
def test_empty_or_missing_descriptions_mean_none_yet(app, home, ml100k, how):
    path = descriptions_path(home, ml100k.catalog.name)
    append_descriptions(path, [DescriptionRecord("1", "Toys come alive.")])
    path.write_bytes(b"") if how == "empty" else path.unlink()
    code, checks, _ = doctor(app)
    assert code == 0 and checks["kept files"]["ok"]


# ------------------------------------------------------------------------------------- adapters


@pytest.mark.parametrize("target,how", [("adapter_model.safetensors", "truncated"),
                                        ("adapter_model.safetensors", "empty"),
                                        ("adapter_config.json", "garbled"), ("marquee.json", "truncated")])
def test_a_damaged_shipped_adapter_is_not_used_and_is_reported(app, home, caplog, target, how):
    shipped = loading.home_adapter_dir(home)
    shutil.copytree(loading.default_adapter_dir(), shipped)
    assert loading.usable_adapter(loading.resolve_adapter("default", home), home) == shipped
    damage(shipped / target, how)
    with caplog.at_level(logging.WARNING, logger="agent.llm.loading"):  # what loading the model does
        assert loading.usable_adapter(loading.resolve_adapter("default", home), home) == \
            loading.default_adapter_dir()  # the packaged one
    assert "is damaged" in caplog.text and "marquee doctor --repair" in caplog.text
    elsewhere = home / "my-adapter"
    shutil.copytree(shipped, elsewhere)
    with pytest.raises(loading.ModelNotAvailable, match="is damaged"):
        loading.usable_adapter(loading.resolve_adapter(str(elsewhere), home), home)  # asked for by path: an error
    code, checks, _ = doctor(app)
    assert code == 1 and target in checks["adapter default"]["detail"]
    assert "marquee finetune --ship" in checks["adapter default"]["fix"]
    code, checks, payload = doctor(app, "--repair")
    assert code == 0 and not shipped.exists() and quarantined(home, "adapters/default"), payload
    assert loading.resolve_adapter("default", home) == loading.default_adapter_dir()


def test_a_garbled_adapter_with_a_manifest_is_caught(home):
    shipped = loading.home_adapter_dir(home)
    shutil.copytree(loading.default_adapter_dir(), shipped)
    write_manifest(shipped)
    damage(shipped / "adapter_model.safetensors", "garbled")  # same size, header intact
    assert "sha256 differs" in loading.adapter_problem(shipped)


# ------------------------------------------------------------------------------------- converted LLM


def fake_converted_model(home: Path) -> Path:
    """A folder shaped like the converted LLM (tiny weights): enough for the checks, which never load it."""
    from safetensors.torch import save_file
    import torch

    folder = loading.converted_dir(home)
    folder.mkdir(parents=True)
    save_file({"w": torch.arange(64, dtype=torch.float32)}, str(folder / "model.safetensors"))
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_text('{"model_type": "llama"}')
    write_manifest(folder)
    return folder


@pytest.mark.parametrize("target,how", [("model.safetensors", "truncated"), ("model.safetensors", "garbled"),
                                        ("model.safetensors", "deleted"), ("config.json", "empty"),
                                        ("tokenizer.json", "garbled")])
def test_a_damaged_converted_model_is_reported(app, home, target, how):
    folder = fake_converted_model(home)
    assert loading.model_folder_problem(folder) is None
    (folder / target).unlink() if how == "deleted" else damage(folder / target, how)
    assert target in loading.model_folder_problem(folder)
    code, checks, _ = doctor(app)
    assert code == 1 and target in checks["converted LLM"]["detail"]
    assert "converts it again" in checks["converted LLM"]["fix"]


# ------------------------------------------------------------------------------------- SASRec cache


def _sasrec_cache(home: Path) -> Path:
    from safetensors.torch import save_file
    import torch

    from retrieval.integrity import sha256

    weights = home / "models" / "sasrec-0123456789abcdef.safetensors"
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file({"item_emb.weight": torch.ones(32, 8)}, str(weights))
    weights.with_suffix(".json").write_text(json.dumps({"format": 2, "sha256": sha256(weights)}))
    return weights


@pytest.mark.parametrize("how", ["truncated", "garbled", "no sidecar"])
def test_a_damaged_sasrec_cache_is_reported_and_moved_aside(app, home, how):
    weights = _sasrec_cache(home)
    weights.with_suffix(".json").unlink() if how == "no sidecar" else damage(weights, how)
    code, checks, _ = doctor(app)
    assert code == 1 and "trained again" in checks["SASRec cache"]["fix"]
    code, checks, payload = doctor(app, "--repair")
    assert code == 0 and not weights.exists() and quarantined(home, f"models/{weights.name}")


# ------------------------------------------------------------------------------------- langgraph.db, eval


@pytest.mark.parametrize("how", ["truncated", "empty", "garbled"])
def test_a_damaged_tool_mode_database_fails_clearly_and_is_moved_aside(app, home, how):
    from agent.tools import checkpointer_for

    db = home / "langgraph.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x TEXT)")
        conn.executemany("INSERT INTO t VALUES (?)", [("row %d" % i * 40,) for i in range(2000)])
    conn.close()
    if how == "garbled":
        data = bytearray(db.read_bytes())
        data[4096 * 3:4096 * 3 + 4096] = b"\x07" * 4096  # a whole b-tree page of garbage
        db.write_bytes(bytes(data))
    else:
        damage(db, how)
    with pytest.raises(RuntimeError, match=r"langgraph.db is damaged.*marquee doctor --repair"):
        checkpointer_for(home)
    code, checks, _ = doctor(app)
    assert code == 1 and "tool-mode conversations start afresh" in checks["langgraph.db"]["fix"]
    code, checks, _ = doctor(app, "--repair")
    assert code == 0 and not db.exists() and quarantined(home, "langgraph.db")
    checkpointer_for(home)  # a fresh one works


def test_a_damaged_eval_report_is_reported_and_its_run_moved_aside(app, home):
    run = home / "eval" / "20261130-120000"
    run.mkdir(parents=True)
    (run / "report.json").write_text('{"rankers": {"ease": {"ndcg@10": 0.07')  # cut off
    (run / "report.md").write_text("# report\n")
    code, checks, _ = doctor(app)
    assert code == 1 and "report.json" in checks["eval report 20261130-120000"]["detail"]
    code, checks, _ = doctor(app, "--repair")
    assert code == 0 and not run.exists()
    assert (quarantined(home, "eval/20261130-120000")[0] / "report.md").read_text() == "# report\n"
