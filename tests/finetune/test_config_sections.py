"""[eval] and [finetune] are sections of the one marquee.toml: loaded, overridden and checked like the rest."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import build
from finetune.evaluation.rankers import check_ranker_names
from finetune.training.config import QUICK, check_scorer, load_finetune_settings
from retrieval.config import ConfigError, Settings

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.upper().startswith("MARQUEE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_one_file_holds_every_section(tmp_path):
    path = tmp_path / "marquee.toml"
    path.write_text("[candidates]\ncount = 12\n[llm]\nscorer = 'listwise'\n"
                    "[eval]\nusers = 50\nrankers = ['mostpop', 'ease']\n[eval.params.ease]\nl2 = 300.0\n"
                    "[finetune]\nretriever = 'ease'\nlora_rank = 4\n")
    settings = Settings.load(path)
    assert settings.candidates.count == 12 and settings.llm.scorer == "listwise"
    assert (settings.eval.users, settings.eval.rankers, settings.eval.params_for("ease")) == \
        (50, ["mostpop", "ease"], {"l2": 300.0})
    assert (settings.finetune.retriever, settings.finetune.lora_rank) == ("ease", 4)


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.toml")), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_shipped_config_loads_strictly(path):
    settings = Settings.load(path)  # unknown keys / sections would raise
    check_ranker_names(settings.eval)
    check_scorer(settings.finetune.scorer)


def test_unknown_ranker_names_in_eval_params_are_errors_naming_known_ones(tmp_path):
    path = tmp_path / "marquee.toml"
    path.write_text("[eval]\nrankers = ['ease']\n[eval.params.eas]\nl2 = 300.0\n")
    with pytest.raises(ValueError, match=r"unknown ranker 'eas' \(did you mean 'ease'\?\) in \[eval.params\]; "
                                         r"known: random, mostpop, .*ease"):
        check_ranker_names(Settings.load(path).eval)
    path.write_text("[eval]\nrankers = ['ease']\n[eval.params.\"ease@strong\"]\nl2 = 3000.0\n")
    check_ranker_names(Settings.load(path).eval)  # a variant of a known ranker is fine
    path.write_text("[eval]\nrankers = ['ease']\n[eval.params.eas]\nl2 = 300.0\n")
    result = CliRunner().invoke(build(), ["eval", "--config", str(path)], env={"MARQUEE_HOME": str(tmp_path)})
    assert result.exit_code == 2 and "unknown ranker 'eas'" in result.output and "[eval.params]" in result.output


def test_finetune_flags_override_the_file_and_the_quick_overlay(tmp_path):
    path = tmp_path / "ft.toml"
    path.write_text("[finetune]\nretriever = 'sasrec'\nlora_rank = 4\nmax_steps = 50\n")
    cfg = load_finetune_settings(path).finetune
    assert (cfg.retriever, cfg.lora_rank, cfg.max_steps) == ("sasrec", 4, 50)
    cfg = load_finetune_settings(path, quick=True).finetune
    assert (cfg.retriever, cfg.lora_rank, cfg.max_steps) == (QUICK["retriever"], 4, QUICK["max_steps"])
    cfg = load_finetune_settings(path, quick=True, retriever="itemknn", max_steps=7, scorer=None).finetune
    assert (cfg.retriever, cfg.max_steps, cfg.scorer) == ("itemknn", 7, "segments")


def test_finetune_flags_validate_like_the_file(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"command line: \[finetune\]: learning_rate, max_minutes"):
        load_finetune_settings(None, max_minutes=-1.0)
    monkeypatch.setenv("MARQUEE_FINETUNE__LORA_RANK", "0")
    with pytest.raises(ConfigError, match="environment variable MARQUEE_FINETUNE__LORA_RANK.*lora_rank must be ≥ 1"):
        load_finetune_settings(None)
