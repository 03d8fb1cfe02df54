"""`marquee ask`, `marquee chat` (piped stdin, slash commands) and `marquee eval-chat` through typer's runner."""
from __future__ import annotations

import json
import uuid

import pytest
from typer.testing import CliRunner

from agent.cli import build

FAST = ["--no-rerank", "--explain", "template"]


@pytest.fixture
def cli(shared_home, monkeypatch):
    monkeypatch.setenv("MARQUEE_HOME", str(shared_home))
    runner = CliRunner()
    app = build()
    return lambda args, stdin=None: runner.invoke(app, args, input=stdin)


def test_ask_json_then_continue_the_session(cli):
    session = f"cli-{uuid.uuid4().hex[:8]}"
    first = cli(["ask", "3 comedies from the 80s", "--session", session, "--json", *FAST])
    assert first.exit_code == 0, first.output
    data = json.loads(first.stdout)
    assert len(data["items"]) == 3 and data["understood"].startswith("Comedy")
    assert all("Comedy" in i["genres"] and 1980 <= i["year"] <= 1989 for i in data["items"])
    assert all(i["evidence"]["satisfies"]["genres"] == ["Comedy"] and i["evidence"]["catalog"]["viewers"] > 0
               for i in data["items"]) and data["language"] == "en"
    chinese = json.loads(cli(["ask", "80年代的喜剧，三部", "--session", f"{session}-zh", "--json", *FAST]).stdout)
    assert chinese["language"] == "zh" and chinese["text"].startswith("为你挑了3部喜剧片（1980年代）")
    second = cli(["ask", "no romance", "--session", session, *FAST])
    assert second.exit_code == 0 and second.stdout.startswith("Here are 3 comedy picks from the 1980s")


def test_chat_reads_piped_stdin_and_slash_commands(cli):
    session = f"cli-{uuid.uuid4().hex[:8]}"
    script = "westerns\n/like 1\n/seen 2\n/like 42\n/bogus\n/state\n/reset\n/state\n/quit\nnever read\n"
    result = cli(["chat", "--session", session, *FAST], stdin=script)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Here are 5 western picks" in out and "Noted: you liked" in out and "marked as seen" in out
    assert "Usage: /like N" in out and "Unknown command /bogus" in out and "Session reset" in out
    assert '"liked": [' in out and "never read" not in out


def test_eval_chat_reports_each_split(cli):
    result = cli(["eval-chat", "--limit", "3", "--json", "--expand", "off", *FAST])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert set(figures) == {"tune", "test"}
    for split in figures.values():
        assert split["cases"] == 3 and split["expand"] == "off" and split["out_of_catalog"] == 0
        assert {"turn_p50_s", "turn_p95_s", "grounding_violations", "constraint_satisfaction", "liked_returned",
                "seen_returned", "disliked_returned", "popularity_fallbacks"} <= set(split)
    only_test = json.loads(cli(["eval-chat", "--split", "test", "--limit", "2", "--json", *FAST]).stdout)
    assert set(only_test) == {"test"} and only_test["test"]["cases"] == 2


def test_eval_chat_runs_chosen_cases_by_id(cli):
    result = cli(["eval-chat", "--case", "zh-scifi-action", "--case", "scifi-action", "--json", *FAST])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    ran = [split for split in figures.values()]
    assert sum(s["cases"] for s in ran) == 2 and sum(s["turns"] for s in ran) == 2
    assert all(s["failed_checks"] == 0 for s in ran)


@pytest.mark.parametrize("args, message", [
    (["eval-chat", "--expand", "maybe"], "'maybe' is not one of 'on', 'off'"),
    (["eval-chat", "--split", "train"], "'train' is not one of"),
    (["eval-chat", "--cases", "/nonexistent.jsonl"], "conversation set not found"),
    (["eval-chat", "--case", "no-such-case"], "no case 'no-such-case' in conversations.jsonl; ids: scifi-action,"),
    (["ask", "hi", "--explain", "poetry"], "'poetry' is not one of 'llm', 'template'"),
    (["ask", "hi", "--session", "bad id!"], "invalid --session: use 1-128 letters"),
    (["chat", "--user", "../x"], "invalid --user: use 1-128 letters"),
])
def test_bad_flags_get_clear_errors(cli, args, message):
    result = cli(args)
    assert result.exit_code == 2 and message in result.output


def test_a_failed_turn_exits_non_zero_with_one_line(cli, monkeypatch):
    """Finding: `ask` printed "Sorry, something went wrong" and exited 0. A failed turn is a failure."""
    from agent.pipeline import TurnPipeline

    def broken(self, turn):
        raise RuntimeError("retriever exploded")

    monkeypatch.setattr(TurnPipeline, "retrieve", broken)
    session = f"cli-{uuid.uuid4().hex[:8]}"
    result = cli(["ask", "westerns", "--session", session, *FAST])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip() == ("error: the turn failed (RuntimeError: retriever exploded); "
                                     "the session is unchanged")
    chat = cli(["chat", "--session", session, *FAST], stdin="westerns\n/state\n")
    assert chat.exit_code == 1 and "error: the turn failed (RuntimeError: retriever exploded)" in chat.stderr
    assert '"turns": 0' in chat.stdout  # the REPL went on; the session is unchanged


def test_repl_answers_a_bad_line_and_goes_on(cli):
    session = f"cli-{uuid.uuid4().hex[:8]}"
    script = ("x" * 20_001 + "\n/set year_min=1990.5\n/set genres=comedy year_min=1990 year_max=1995 count=3\n"
              "/set colour=red\nsomething fun\n/like ²\n")
    result = cli(["chat", "--session", session, *FAST], stdin=script)
    assert result.exit_code == 0, result.output
    assert "error: invalid message: too long: 20001 characters, at most 20000" in result.output
    assert "error: invalid year_min: must be a whole number, got '1990.5'" in result.output
    assert "Saved: genres Comedy; year_min 1990; year_max 1995; count 3" in result.stdout
    assert "error: /set expects KEY=VALUE with KEY one of genres" in result.output
    assert "Here are 3 comedy picks 1990–1995" in result.stdout and "Usage: /like N" in result.stdout
    assert "Traceback" not in result.output


def test_chat_reads_bytes_that_are_not_utf8(cli):
    result = cli(["chat", "--session", f"cli-{uuid.uuid4().hex[:8]}", *FAST], stdin=b"westerns \xff\xfe\n")
    assert result.exit_code == 0 and "Here are 5 western picks" in result.stdout, result.output
