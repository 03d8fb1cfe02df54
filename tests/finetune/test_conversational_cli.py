"""`marquee eval --conversational` end to end: 5 real ML-100k users, a ranker, an oracle ranker and two chat rows
(LLM rerank off, EASE as the collaborative model, to stay fast), configured through [eval.conversational] like a
user would, at the validation stage (`--stage` wins over the file)."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from agent.cli import build
from finetune.data.splits import leave_one_out
from finetune.evaluation.conversational.requests import names_title
from retrieval.config import Settings
from retrieval.config.conversational import REQUEST_TYPES

CONFIG = """
[agent]
rerank = false

[candidates]
collaborative_model = "ease"

[eval.conversational]
stage = "test"
bootstrap_samples = 100
targets = [{ type = "genre", baseline = "ease+oracle", ratio = 1.0 }]

[[eval.conversational.systems]]
name = "mostpop"
kind = "ranker"
ranker = "mostpop"

[[eval.conversational.systems]]
name = "ease+oracle"
kind = "ranker"
ranker = "ease"
oracle = true

[[eval.conversational.systems]]
name = "chat"
kind = "agent"

[[eval.conversational.systems]]
name = "chat-rrf"
kind = "agent"
settings = { candidates = { fusion = "rrf" } }
"""


@pytest.fixture(scope="module")
def run(shared_home, tmp_path_factory):
    folder = tmp_path_factory.mktemp("conversational")
    (folder / "bench.toml").write_text(CONFIG)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MARQUEE_HOME", str(shared_home))
        mp.chdir(folder)
        result = CliRunner().invoke(build(), ["eval", "--conversational", "--users", "5", "--seed", "2",
                                              "--stage", "validation", "--config", str(folder / "bench.toml"),
                                              "--out", str(folder / "out")])
    return result, folder / "out"


def test_writes_the_report_with_every_system_and_type(run, ml100k):
    result, out = run
    assert result.exit_code == 0, result.output
    assert "NDCG@5 by request type" in result.output and "report.md" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["meta"]["n_users"] == 5 and report["meta"]["command"].startswith("marquee ")
    assert report["meta"]["agents"]["chat"]["rerank"] is False and report["meta"]["machine"]
    assert report["meta"]["stage"] == "validation" and "## Targets" in (out / "report.md").read_text()
    assert report["meta"]["agents"]["chat-rrf"]["overrides"] == {"candidates": {"fusion": "rrf"}}
    assert list(report["results"]) == ["mostpop", "ease+oracle", "chat", "chat-rrf"]
    for by_type in report["results"].values():
        assert set(by_type) == {*REQUEST_TYPES, "all"}
        assert 0.0 <= by_type["all"]["ndcg@5"] <= by_type["all"]["hr@5"] <= 1.0
    assert report["results"]["chat"]["all"]["returned"] > 3  # the chat answers (5 picks by default)
    assert report["results"]["ease+oracle"]["genre"]["satisfaction"] == 1.0  # the oracle only picks what was asked
    assert set(report["bootstrap"]["comparisons"]) == {"mostpop", "ease+oracle", "chat-rrf"}
    assert report["targets"][0]["system"] == "chat" and report["targets"][0]["baseline"] == "ease+oracle"
    md = (out / "report.md").read_text()
    assert "## genre-zh requests" in md and "| ease+oracle |" in md and "## Targets" in md


def test_per_request_file_holds_requests_picks_and_scores(run, ml100k):
    _, out = run
    catalog = ml100k.catalog
    per = json.loads((out / "per_user.json").read_text())
    requests = per["requests"]
    split = leave_one_out(ml100k.interactions)
    inter = split.interactions
    validation = {inter.user_ids[u]: catalog.at(int(inter.items[split.validation_rows[u]])).item_id
                  for u in split.evaluated_users}
    assert all(r["target"] == validation[r["user_id"]] for r in requests)  # --stage validation: the film before
    for system in ("chat", "chat-rrf"):  # the chat never returns what the user has seen (train) nor the anchor
        for r, picks in zip(requests, per["systems"][system]["picks"]):
            assert r["attributes"]["anchor"] not in picks
    assert 20 <= len(requests) <= 25 and {r["type"] for r in requests} <= set(REQUEST_TYPES)
    for r in requests:
        assert not names_title(r["text"], catalog[r["target"]])
    for name, rows in per["systems"].items():
        assert len(rows["picks"]) == len(rows["ndcg@5"]) == len(requests)
        for r, picks, hit in zip(requests, rows["picks"], rows["hr@5"]):
            assert len(picks) <= 5 and len(set(picks)) == len(picks)
            assert hit == (1.0 if r["target"] in picks else 0.0)
    oracle = per["systems"]["ease+oracle"]["picks"]
    for r, picks in zip(requests, oracle):
        years, genres = (r["attributes"]["year_min"], r["attributes"]["year_max"]), set(r["attributes"]["genres"])
        for item_id in picks:
            item = catalog[item_id]
            assert not genres or genres & set(item.genres)
            assert years[0] is None or years[0] <= item.year <= years[1]
            assert item_id != r["attributes"]["anchor"]


@pytest.mark.parametrize("args, message", [(["--types", "vague,gossip"], "unknown request type"),
                                           (["--rankers", "ease"], "does not apply to --conversational"),
                                           (["--stage", "train"], "Invalid value for '--stage'"),
                                           (["--users", "-1"], "greater than or equal to 0")])
def test_bad_input_is_a_clear_error(tmp_path, monkeypatch, args, message):
    monkeypatch.setenv("MARQUEE_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(build(), ["eval", "--conversational", *args])
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output


def test_types_without_conversational_and_a_table_in_eval_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(build(), ["eval", "--types", "genre"])
    assert result.exit_code == 2 and "--types needs --conversational" in result.output
    (tmp_path / "m.toml").write_text(CONFIG)
    assert Settings.load(tmp_path / "m.toml").eval.conversational.bootstrap_samples == 100  # [eval] still loads


def test_the_section_is_strict_and_typed(tmp_path):
    from retrieval.config import ConfigError

    (tmp_path / "old.toml").write_text('[eval.conversational]\nhistory = "train"\n')  # the option `stage` replaced
    with pytest.raises(ConfigError, match=r"unknown key 'history' in \[eval.conversational\]"):
        Settings.load(tmp_path / "old.toml")
    (tmp_path / "typo.toml").write_text('[eval.conversational]\nstage = "tset"\n')
    with pytest.raises(ConfigError, match=r"\[eval.conversational\] stage"):
        Settings.load(tmp_path / "typo.toml")
    defaults = Settings.load().eval.conversational
    assert defaults.stage == "test" and [s.name for s in defaults.systems][-2:] == ["chat", "chat-rrf"]
    assert {(t.type, t.baseline, t.ratio) for t in defaults.targets} >= {("all", "chat-rrf", 1.3),
                                                                         ("loved", "chat-rrf", 1.2)}
