"""`marquee search` end to end: real catalog, real MiniLM, real Chroma index (the session's shared home)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from agent.cli import search as search_cli

JSON_KEYS = {"item_id", "title", "year", "genres", "score", "sources"}


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    search_cli.register(app)

    @app.callback()
    def _root() -> None:  # keeps `search` a sub-command, as in the real `marquee` app
        pass

    return app


@pytest.fixture
def run(app, shared_home, monkeypatch):
    monkeypatch.setenv("MARQUEE_HOME", str(shared_home))
    monkeypatch.delenv("MARQUEE_CONFIG", raising=False)
    monkeypatch.chdir(shared_home)  # no stray ./marquee.toml is picked up
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, ["search", *args])

    return invoke


def rows_of(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_normal_query_prints_a_table(run):
    result = run("space adventure", "--genre", "sci-fi", "--k", "5")
    assert result.exit_code == 0, result.output
    assert "5 results for 'space adventure'" in result.stdout
    assert result.stdout.count("Sci-Fi") >= 5 and "Traceback" not in result.output


def test_json_output_shape_and_filters(run, ml100k):
    rows = rows_of(run("sci-fi and action films", "--genre", "SCI-FI", "--exclude-genre", "horror",
                       "--year-min", "1980", "--year-max", "1995", "--k", "7", "--json"))
    assert len(rows) == 7
    for row in rows:
        assert set(row) == JSON_KEYS
        item = ml100k.catalog[row["item_id"]]
        assert row["title"] == item.title and row["year"] == item.year and row["genres"] == list(item.genres)
        assert "Sci-Fi" in row["genres"] and "Horror" not in row["genres"] and 1980 <= row["year"] <= 1995
        assert isinstance(row["score"], float) and set(row["sources"]) <= {"semantic", "collaborative", "popularity"}
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)


def test_like_star_wars_gives_collaborative_neighbours(run):
    rows = rows_of(run("--like", "star wars", "--k", "10", "--json"))
    titles = {r["title"] for r in rows}
    assert "Star Wars" not in titles
    assert {"Return of the Jedi", "The Empire Strikes Back"} <= titles
    assert sum("collaborative" in r["sources"] for r in rows) >= 8


def test_diversity_flags_change_the_list(run, ml100k):
    args = ("sci-fi and action films", "--k", "10", "--json")
    plain = rows_of(run(*args))
    tail = rows_of(run(*args, "--long-tail", "1.0"))
    diverse = rows_of(run(*args, "--mmr", "0.3"))
    popularity = lambda rows: sum(ml100k.catalog[r["item_id"]].popularity for r in rows) / len(rows)  # noqa: E731
    assert popularity(tail) < popularity(plain)
    assert [r["item_id"] for r in diverse] != [r["item_id"] for r in plain]
    assert diverse[0]["item_id"] == plain[0]["item_id"]


def test_messy_query_text_still_works(run):
    rows = rows_of(run("\x07 crime\tthriller " + "very " * 2000, "--k", "3", "--json"))
    assert len(rows) == 3


@pytest.mark.parametrize("args, message", [
    (("space", "--genre", "space-western"), "unknown genre 'space-western'; valid genres: Action, Adventure"),
    (("space", "--exclude-genre", "scifi", "--exclude-genre", "noir"), "unknown genres 'scifi', 'noir'"),
    (("--like", "the matrixx reloaded"), "no catalog title matches --like 'the matrixx reloaded'"),
    (("--like", "jurassic world"), "did you mean: Jurassic Park (1993)"),
    (("space", "--k", "0"), "Invalid value for '--k'"),
    (("space", "--k", "-3"), "Invalid value for '--k'"),
    (("",), "nothing to search for"),
    (("   ",), "nothing to search for"),
    (("space", "--year-min", "1999", "--year-max", "1980"), "--year-min 1999 is after --year-max 1980"),
    (("space", "--genre", "war", "--exclude-genre", "War"), "genre both required and excluded: War"),
    (("space", "--year-min", "nineteen"), "Invalid value for '--year-min'"),
    (("space", "--mmr", "1.5"), "--mmr: Input should be less than or equal to 1"),
    (("space", "--long-tail", "-1"), "--long-tail: Input should be greater than or equal to 0"),
])
def test_bad_input_gives_a_clear_error(run, args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an escaped exception


def test_missing_config_file_is_reported(run, tmp_path):
    result = run("space", "--config", str(tmp_path / "nope.toml"))
    assert result.exit_code == 2 and "config file not found" in result.output


def test_no_results_is_said_plainly(run):
    result = run("silent films", "--year-min", "1900", "--year-max", "1910")
    assert result.exit_code == 0 and "No items satisfy these constraints" in result.stdout


def test_real_console_script_json(shared_home):
    """The installed `marquee` entry point (all command modules registered), as a user runs it."""
    marquee = Path(sys.executable).with_name("marquee")
    env = {**os.environ, "MARQUEE_HOME": str(shared_home), "HF_HUB_OFFLINE": "1"}
    env.pop("MARQUEE_CONFIG", None)
    proc = subprocess.run([str(marquee), "search", "a funny animated film for kids", "--k", "4", "--json"],
                          capture_output=True, text=True, env=env, cwd=shared_home, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert len(rows) == 4 and all(set(r) == JSON_KEYS for r in rows)
    assert sum("Animation" in r["genres"] or "Children's" in r["genres"] for r in rows) >= 3
    bad = subprocess.run([str(marquee), "search", "x", "--genre", "nope"], capture_output=True, text=True,
                         env=env, cwd=shared_home, timeout=300)
    assert bad.returncode == 2 and "valid genres" in bad.stderr and "Traceback" not in bad.stderr
