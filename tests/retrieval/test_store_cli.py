"""`marquee index`, `marquee doctor` on a tiny own catalog (real MiniLM, real Chroma)."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from agent.cli import build

CATALOG = ("item_id,title,year,genres,description\n"
           "m1,Night Train,1990,Thriller|Mystery,A detective hunts a killer aboard an overnight train.\n"
           "m2,Paper Moons,2004,Romance,Two letter writers fall in love without meeting.\n"
           "m3,Red Planet Run,2012,Sci-Fi|Action,Miners escape a collapsing colony on Mars.\n"
           "m4,Grandma's Garden,1978,Family|Comedy,A summer of mischief in an overgrown garden.\n")


@pytest.fixture(scope="module")
def app():
    return build()


@pytest.fixture
def env(tmp_path):
    catalog = tmp_path / "films.csv"
    catalog.write_text(CATALOG)
    return {"MARQUEE_HOME": str(tmp_path / "home"), "MARQUEE_CATALOG__SOURCE": str(catalog),
            "MARQUEE_CONFIG": str(tmp_path / "absent.toml"), "MARQUEE_CHROMA_URL": "", "MARQUEE_STORE__CHROMA_URL": ""}


def run(app, args, env):
    return CliRunner().invoke(app, args, env=env, catch_exceptions=False)


def doctor_checks(app, env) -> tuple[int, dict]:
    result = run(app, ["doctor", "--json"], env)
    payload = json.loads(result.stdout)
    return result.exit_code, {c["name"]: c for c in payload["checks"]}


def test_index_then_doctor_then_incremental_update(app, env, tmp_path):
    code, checks = doctor_checks(app, env)
    assert code == 0  # a missing index is a warning, not a failure
    assert checks["search index"]["ok"] is False and checks["search index"]["fix"] == "marquee index"
    assert checks["catalog"]["detail"].startswith("films: 4 items")

    first = run(app, ["index", "--quiet"], env)
    assert first.exit_code == 0, first.output
    assert "4 items; embedded 4 (4 new, 0 changed)" in first.stdout
    assert "is up to date (4 items)" in run(app, ["index", "-q"], env).stdout

    code, checks = doctor_checks(app, env)
    assert code == 0 and checks["search index"]["ok"] and "4 items, up to date" in checks["search index"]["detail"]
    assert checks["vector store"]["detail"] == f"embedded Chroma {env['MARQUEE_HOME']}/chroma"

    path = tmp_path / "films.csv"
    path.write_text(CATALOG.replace("Miners escape", "Smugglers flee"))
    code, checks = doctor_checks(app, env)
    assert "stale (0 new, 1 changed, 0 re-described, 0 removed)" in checks["search index"]["detail"]
    assert "embedded 1 (0 new, 1 changed), reused 3" in run(app, ["index", "-q"], env).stdout
    rebuilt = run(app, ["index", "-q", "--rebuild"], env)
    assert "embedded 4" in rebuilt.stdout and "--rebuild requested" in rebuilt.stdout


def test_index_reports_bad_catalog_rows_with_lines_and_can_skip_them(app, env, tmp_path):
    (tmp_path / "films.csv").write_text(CATALOG + "m5,,1999,Drama,\nm1,Again,2000,Drama,\n")
    result = run(app, ["index", "-q"], env)
    assert result.exit_code == 2
    assert f"{tmp_path / 'films.csv'}:6: empty title" in result.stderr
    assert "duplicate item_id 'm1' (first on line 2)" in result.stderr
    skipping = run(app, ["index", "-q"], {**env, "MARQUEE_CATALOG__SKIP_BAD_ROWS": "true"})
    assert skipping.exit_code == 0 and "skipped 2 bad rows" in skipping.stderr and "embedded 4" in skipping.stdout


def test_config_file_option(app, env, tmp_path):
    toml = tmp_path / "marquee.toml"
    toml.write_text(f'home = "{tmp_path / "toml-home"}"\n[store]\ncollection = "from-toml"\n')
    env = {k: v for k, v in env.items() if k != "MARQUEE_HOME"}
    result = run(app, ["index", "-q", "--config", str(toml)], env)
    assert result.exit_code == 0 and "index from-toml.v" in result.stdout
    assert (tmp_path / "toml-home" / "chroma").is_dir()
    missing = run(app, ["index", "--config", str(tmp_path / "nope.toml")], env)
    assert missing.exit_code == 2 and "config file not found" in missing.stderr


def test_doctor_fails_and_names_the_fix_when_required_pieces_are_missing(app, env, tmp_path):
    code, checks = doctor_checks(app, {**env, "MARQUEE_EMBEDDING__MODEL": str(tmp_path / "no-model")})
    assert code == 1
    assert checks["sentence encoder"]["ok"] is False and "embedding.model" in checks["sentence encoder"]["fix"]
    code, checks = doctor_checks(app, {**env, "MARQUEE_CATALOG__SOURCE": str(tmp_path / "gone.csv")})
    assert code == 1 and "file not found" in checks["catalog"]["detail"]
    for package in ("torch", "transformers", "sentence-transformers", "chromadb"):
        assert checks[package]["ok"] and checks[package]["detail"][0].isdigit()
    table = run(app, ["doctor"], {**env, "MARQUEE_EMBEDDING__MODEL": str(tmp_path / "no-model")})
    assert table.exit_code == 1 and "MISSING" in table.stdout and "required pieces are missing" in table.stdout


def test_unreachable_chroma_server_is_reported_by_doctor_and_index(app, env):
    bad = {**env, "MARQUEE_CHROMA_URL": "http://127.0.0.1:9"}
    code, checks = doctor_checks(app, bad)
    assert code == 1 and "chroma run" in checks["vector store"]["fix"]
    result = run(app, ["index", "-q"], bad)
    assert result.exit_code == 2 and "cannot reach the Chroma server at http://127.0.0.1:9" in result.stderr
