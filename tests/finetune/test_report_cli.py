"""Report files (JSON / markdown / PNG) and `marquee eval` end to end on a user sample."""
from __future__ import annotations

import json

import matplotlib.image
import pytest
from typer.testing import CliRunner

from agent.cli import build
from finetune.evaluation.rankers import RANKERS, ComponentMissing, RankerEntry
from finetune.evaluation.report import bar_chart, delta_rows
from finetune.evaluation.runner import run_evaluation
from retrieval.config import ConfigError, EvalConfig, Settings

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _missing(ctx, params):
    raise ComponentMissing("the gizmo is not installed yet")


def test_report_files(ml100k, tmp_path, monkeypatch):
    monkeypatch.setitem(RANKERS, "gizmo", RankerEntry("gizmo", "llm", _missing))
    config = EvalConfig(users=120, rankers=["mostpop", "ease", "next-id-canary", "gizmo"], bootstrap_samples=200)
    report, results, paths = run_evaluation(config, ml100k, tmp_path, out=tmp_path / "out",
                                            command="pytest", log=lambda msg: None)
    data = json.loads(paths["json"].read_text())
    assert {"meta", "config", "rankers", "checks", "bootstrap", "skipped", "context"} <= set(data)
    assert data["meta"]["n_users"] == 120 and data["meta"]["command"] == "pytest"
    ease = next(r for r in data["rankers"] if r["name"] == "ease")
    assert {"recall@10", "ndcg@10", "mrr@10", "precision@10", "f1@10", "hr@1"} <= set(ease["metrics"])
    assert {"hr@1", "ndcg@10"} <= set(ease["sampled"])
    assert set(ease["beyond"]) == {"coverage", "diversity", "long_tail_share", "novelty"}
    assert set(ease["validity"]) == {"out_of_catalog", "duplicate", "history_repeat"}
    assert data["bootstrap"]["best_baseline"] == "ease"
    assert set(data["bootstrap"]["comparisons"]) == {"mostpop", "next-id-canary"}
    assert data["skipped"] == ["SKIPPED gizmo: the gizmo is not installed yet"]
    per_user = json.loads(paths["per_user"].read_text())
    assert len(per_user["user_ids"]) == len(per_user["ndcg@10"]["ease"]) == 120
    md = paths["markdown"].read_text()
    assert "| ease |" in md and "NOT MEASURED" in md and "SKIPPED gizmo" in md
    assert "LlamaRec" in md and "NOT the same protocol" in md
    raw = paths["png"].read_bytes()
    assert raw.startswith(PNG_MAGIC)
    image = matplotlib.image.imread(paths["png"])  # decodes: a valid PNG
    assert image.shape[0] > 100 and image.shape[1] > 100
    # the chart's forest panel: one ΔNDCG@10 interval per ranker, the best baseline at 0, from the bootstrap
    rows = delta_rows(data)
    assert rows[0] == ("ease", 0.0, 0.0, 0.0) and {name for name, *_ in rows} == {"ease", "mostpop", "next-id-canary"}
    for name, diff, low, high in rows[1:]:
        cmp = data["bootstrap"]["comparisons"][name]
        assert (diff, low, high) == (cmp["diff"], cmp["ci_low"], cmp["ci_high"]) and low <= diff <= high
    assert bar_chart(data, tmp_path / "again.png") == 3


def test_eval_config_from_toml(tmp_path):
    path = tmp_path / "marquee.toml"
    path.write_text('[eval]\nusers = 50\nrankers = ["mostpop", "ease"]\n[eval.params.ease]\nl2 = 300.0\n')
    cfg = Settings.load(path, eval={"seed": 7}).eval
    assert cfg.users == 50 and cfg.rankers == ["mostpop", "ease"] and cfg.seed == 7
    assert cfg.params_for("ease") == {"l2": 300.0}
    path.write_text("[eval]\nuser = 50\n")
    with pytest.raises(ConfigError, match="unknown key 'user' in \\[eval\\]; did you mean 'users'"):
        Settings.load(path)
    path.write_text("[eval\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Settings.load(path)


def test_cli_eval_writes_report_and_prints_table(tmp_path, monkeypatch):
    monkeypatch.setenv("MARQUEE_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # no stray marquee.toml
    # the flags --users and --rankers win over the file's [eval] users / rankers
    (tmp_path / "variants.toml").write_text('[eval]\nusers = 40\nrankers = ["random"]\n'
                                            '[eval.params."itemknn@wide"]\nneighbours = 200\n')
    result = CliRunner().invoke(build(), ["eval", "--users", "150", "--rankers", "mostpop,itemknn,itemknn@wide",
                                          "--config", str(tmp_path / "variants.toml"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "itemknn" in result.output and "N/A" in result.output
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["meta"]["n_users"] == 150
    rows = {r["name"]: r for r in report["rankers"]}
    assert list(rows) == ["mostpop", "itemknn", "itemknn@wide"]
    assert rows["itemknn@wide"]["params"]["neighbours"] == 200 and rows["itemknn"]["params"]["neighbours"] == 10
    assert (tmp_path / "run" / "report.json").is_file() and (tmp_path / "run" / "ndcg_recall.png").is_file()


@pytest.mark.parametrize("args, message", [(["--rankers", "mostpop,nope"], "unknown ranker"),
                                           (["--rankers", "nope@variant"], "unknown ranker"),
                                           (["--users", "-3"], "command line: [eval] users: users must be >= 0"),
                                           (["--stage", "train"], "'train' is not one of")])
def test_cli_eval_rejects_bad_input(tmp_path, monkeypatch, args, message):
    monkeypatch.setenv("MARQUEE_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(build(), ["eval", *args])
    assert result.exit_code == 2
    assert message in result.output
