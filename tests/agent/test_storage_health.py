"""A damaged session database is reported with the exact fix on every interface (never a traceback, never
silently replaced), and `marquee doctor --repair` moves it aside (kept) and starts an empty one."""
from __future__ import annotations

import json
import os
import re
import shutil

import pytest
from typer.testing import CliRunner

from agent.cli import build
from agent.storage import Storage, StorageError, check_database, parse_url


@pytest.fixture(scope="module")
def healthy_db(tmp_path_factory):
    """A real marquee.db with enough rows to span many pages (so that damage lands inside its b-trees)."""
    path = tmp_path_factory.mktemp("healthy") / "marquee.db"
    store = Storage(path)
    for i in range(300):
        store.save_turn(f"s{i}", "alice", {"genres": ["Drama"], "i": i, "pad": "x" * 400},
                        user_message="m" * 300, reply="r" * 300)
    store.close()
    return path


def damage(kind: str, source, target) -> bytes:
    if kind == "empty":
        target.write_bytes(b"")
    elif kind == "garbled":
        target.write_bytes(b"this is not a database at all \x00\x01" * 100)
    else:
        shutil.copy(source, target)
        if kind == "truncated":
            os.truncate(target, target.stat().st_size // 2)
        else:  # one b-tree page overwritten, as a bad disk block would
            with target.open("r+b") as handle:
                handle.seek(4096 * 5)
                handle.write(b"\xff" * 4096)
    return target.read_bytes()


KINDS = {"empty": "is empty (0 bytes)", "garbled": "is not a SQLite database", "truncated": "is damaged",
         "bad page": "is damaged"}


@pytest.mark.parametrize("kind", list(KINDS))
def test_damage_is_reported_with_the_fix_and_the_file_left_alone(kind, healthy_db, tmp_path):
    path = tmp_path / "marquee.db"
    before = damage(kind, healthy_db, path)
    health = check_database(parse_url(path))
    assert not health.ok and health.damaged and KINDS[kind] in health.detail
    with pytest.raises(StorageError, match=rf"{re.escape(KINDS[kind])}.*Fix: marquee doctor --repair") as err:
        Storage(path)
    assert "restore" in str(err.value) and str(path) in str(err.value)
    assert path.read_bytes() == before  # never silently replaced or "repaired" on open


def test_a_healthy_and_a_missing_database_pass(healthy_db, tmp_path):
    assert check_database(parse_url(healthy_db)).ok
    missing = check_database(parse_url(tmp_path / "new.db"))
    assert missing.ok and "created on first use" in missing.detail


@pytest.fixture
def damaged_home(tmp_home, healthy_db):
    damage("truncated", healthy_db, tmp_home / "marquee.db")
    return tmp_home


def _no_traceback(result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_ask_and_serve_stop_with_the_fix(damaged_home):
    from benchmarks.web_driver import free_port

    cli, runner = build(), CliRunner()
    for args in (["ask", "comedies", "--no-rerank"], ["serve", "--port", str(free_port())]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        assert "is damaged" in result.output and "marquee doctor --repair" in result.output
        _no_traceback(result)


def test_doctor_reports_it_and_repair_moves_it_aside(damaged_home):
    cli, runner = build(), CliRunner()
    damaged_bytes = (damaged_home / "marquee.db").read_bytes()
    report = runner.invoke(cli, ["doctor", "--json"])
    assert report.exit_code == 1, report.output
    check = next(c for c in json.loads(report.stdout)["checks"] if c["name"] == "session database")
    assert not check["ok"] and "is damaged" in check["detail"] and "marquee doctor --repair" in check["fix"]

    repaired = runner.invoke(cli, ["doctor", "--repair"])
    assert "moved it aside" in repaired.output and "started an empty session database" in repaired.output
    kept = list(damaged_home.glob("marquee.db.damaged-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == damaged_bytes  # moved, byte for byte, not deleted
    assert check_database(parse_url(damaged_home / "marquee.db")).ok
    again = runner.invoke(cli, ["doctor", "--json", "--repair"])  # nothing left to repair: no second copy
    check = next(c for c in json.loads(again.stdout)["checks"] if c["name"] == "session database")
    assert check["ok"] and len(list(damaged_home.glob("marquee.db.damaged-*"))) == 1


def test_doctor_reports_an_unreachable_postgres(tmp_home, monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MARQUEE_STORAGE__URL", f"postgresql://marquee:pw@127.0.0.1:{port}/marquee")
    monkeypatch.setenv("MARQUEE_STORAGE__CONNECT_TIMEOUT", "2")
    result = CliRunner().invoke(build(), ["doctor", "--json"])
    assert result.exit_code == 1
    check = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "session database")
    assert not check["ok"] and "cannot use the session database postgresql://marquee:***@" in check["detail"]
    assert "scripts/cluster.sh up" in check["fix"] and "pw@" not in result.stdout


def test_doctor_reports_postgres_schema(postgres_url, tmp_home, monkeypatch):
    monkeypatch.setenv("MARQUEE_STORAGE__URL", postgres_url)
    empty = CliRunner().invoke(build(), ["doctor", "--json"])
    check = next(c for c in json.loads(empty.stdout)["checks"] if c["name"] == "session database")
    assert check["ok"] and "empty (tables are created on first start)" in check["detail"]
    Storage(postgres_url).close()
    ready = CliRunner().invoke(build(), ["doctor", "--json"])
    check = next(c for c in json.loads(ready.stdout)["checks"] if c["name"] == "session database")
    assert check["ok"] and "schema v3" in check["detail"]


def test_checking_an_open_database_keeps_what_other_processes_commit(tmp_path):
    """The check opens the file only through SQLite: a plain open() + close() would drop this process's POSIX
    locks on it, and a write another process commits afterwards could then be invisible here (or overwritten)."""
    import subprocess
    import sys

    path = tmp_path / "marquee.db"
    held = Storage(path)
    held.save_turn("here", None, {"n": 1})
    assert held.load_session("here") == {"n": 1}  # a pooled connection of this process stays open
    assert check_database(parse_url(path)).ok
    writer = (f"import os; from agent.storage import Storage; Storage({str(path)!r}).save_turn('there', None, "
              "{'n': 2}); os._exit(0)")  # commits, then dies without closing (as kill -9 would)
    subprocess.run([sys.executable, "-c", writer], check=True, timeout=120)
    fresh = Storage(path)
    assert fresh.load_session("there") == {"n": 2} and held.load_session("there") == {"n": 2}
    held.close()
    fresh.close()
