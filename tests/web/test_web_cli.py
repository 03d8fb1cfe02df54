"""`marquee serve` argument errors are clear and happen before any model is loaded."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from agent.cli import build
from agent.web.server import parse_auth


@pytest.fixture(scope="module")
def cli():
    return build()


@pytest.mark.parametrize("value", ["alice", ":secret", "alice:", "  :x"])
def test_bad_auth_is_rejected_with_the_expected_format(cli, tmp_home, value):
    result = CliRunner().invoke(cli, ["serve", "--auth", value])
    assert result.exit_code == 2
    assert "USER:PASSWORD" in result.output
    assert not (tmp_home / "marquee.db").exists(), "the agent was loaded before the arguments were checked"


def test_auth_parsing_keeps_colons_in_passwords():
    assert parse_auth("alice:s3:cr:et") == ("alice", "s3:cr:et")
    assert parse_auth(None) is None and parse_auth("") is None


def test_missing_config_file_is_reported(cli, tmp_home, tmp_path):
    result = CliRunner().invoke(cli, ["serve", "--config", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert "config file not found" in result.output


def test_port_out_of_range_is_a_usage_error(cli, tmp_home):
    result = CliRunner().invoke(cli, ["serve", "--port", "70000"])
    assert result.exit_code == 2
    assert "65535" in result.output


def test_port_in_use_fails_fast_with_advice(cli, tmp_home):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "--port", str(port)])
    assert result.exit_code == 2
    assert f"127.0.0.1:{port}" in result.output and "--port" in result.output
    assert not (tmp_home / "marquee.db").exists(), "the agent was loaded before the port was checked"
