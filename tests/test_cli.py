"""The `marquee` command itself: --version, --verbose, help text shown as written, choices as enums, and
commands that join through the `marquee.commands` entry points (a broken plugin is reported, not fatal)."""
from __future__ import annotations

import importlib.metadata
import logging

import pytest
import typer
from typer.testing import CliRunner

import agent.cli as cli
from agent.cli import build

WIDE = {"COLUMNS": "200", "NO_COLOR": "1"}  # no wrapping or colour codes inside the asserted phrases


@pytest.fixture(scope="module")
def app():
    return build()


@pytest.fixture
def restore_logging():
    """--verbose configures logging on the runner's stderr: put it back for the tests that follow."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name in cli.OUR_PACKAGES:
        logging.getLogger(name).setLevel(logging.NOTSET)


def test_version_is_the_installed_distribution(app):
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"marquee {importlib.metadata.version('marquee')}"


def help_text(app, *command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    return " ".join(result.stdout.split())  # the help formatter wraps lines at the terminal width


def test_help_shows_config_sections_literally(app):
    """Rich markup is off: "[eval]" and "[finetune]" in help texts are not eaten as style tags."""
    assert "(default: [eval] rankers)" in help_text(app, "eval")
    assert "marquee.toml (its [eval] section" in help_text(app, "eval")
    assert "marquee.toml (its [finetune] section" in help_text(app, "finetune")


@pytest.mark.parametrize("args, allowed", [
    (["eval-chat", "--expand", "maybe"], "'on', 'off'"),
    (["ask", "hi", "--explain", "poetry"], "'llm', 'template'"),
    (["eval", "--stage", "train"], "'test', 'validation'"),
    (["finetune", "--scorer", "pairwise"], "'segments', 'listwise'"),
    (["bench", "no_such_bench"], "'index', 'query', 'hybrid', 'llm', 'turn', 'explain', 'web'"),
])
def test_choice_options_reject_unknown_values_and_list_the_valid_ones(app, args, allowed):
    result = CliRunner().invoke(app, args, env=WIDE)
    assert result.exit_code == 2
    assert f"is not one of {allowed}" in result.output


def test_verbose_logs_marquee_packages_to_stderr(app, tmp_path, restore_logging):
    result = CliRunner().invoke(app, ["-v", "eval-chat", "--cases", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 2 and "conversation set not found" in result.stderr
    assert f"INFO agent.cli: marquee {importlib.metadata.version('marquee')}" in result.stderr
    assert logging.getLogger("agent").level == logging.INFO
    assert logging.getLogger("transformers").getEffectiveLevel() == logging.WARNING  # libraries stay quiet
    CliRunner().invoke(app, ["-vv", "eval-chat", "--cases", str(tmp_path / "none.jsonl")])
    assert logging.getLogger("retrieval").level == logging.DEBUG


def test_quiet_by_default(app, tmp_path):
    result = CliRunner().invoke(app, ["eval-chat", "--cases", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 2 and "INFO" not in result.stderr


def test_plugin_commands_come_from_entry_points():
    plugins = {ep.name: ep.value for ep in cli.plugin_entry_points()}
    assert plugins == {"bench": "benchmarks.cli:register", "eval": "finetune.cli:register",
                       "finetune": "finetune.training.cli:register"}
    assert not any(m.startswith(("finetune", "benchmarks")) for m in cli.COMMAND_MODULES)


def test_a_broken_plugin_becomes_a_command_that_explains_itself(monkeypatch):
    broken = importlib.metadata.EntryPoint(name="widget", value="no_such_package.cli:register",
                                           group=cli.PLUGIN_GROUP)
    monkeypatch.setattr(cli, "plugin_entry_points", lambda: [broken])
    app = typer.Typer(rich_markup_mode=None)
    app.command("hello")(lambda: typer.echo("still here"))
    assert cli.register_plugins(app) == ["widget"]
    result = CliRunner().invoke(app, ["widget", "--anything", "x"])
    assert result.exit_code == 2
    assert "could not be loaded from no_such_package.cli:register" in result.stderr
    assert "ModuleNotFoundError" in result.stderr and "reinstall" in result.stderr
    assert CliRunner().invoke(app, ["hello"]).stdout.strip() == "still here"  # the rest of the CLI works
