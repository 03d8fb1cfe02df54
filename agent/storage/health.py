"""Is the session database usable? Checked on every start and by `marquee doctor`; `--repair` moves a damaged
SQLite file aside (never deletes it) so that a fresh one can start.

SQLite: access rights, a zero length, then `PRAGMA quick_check`; an empty or garbled file is damage, never
silently treated as a new database. PostgreSQL: the server answers, and its schema version is one this build knows.
"""
from __future__ import annotations

import datetime as dt
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from agent.storage.database import StorageError, make_engine, redact, sqlite_path

SIDE_FILES = ("-wal", "-shm", "-journal")  # SQLite's companions of a database file


@dataclass
class DatabaseHealth:
    ok: bool
    detail: str
    fix: str = ""
    damaged: bool = False  # a SQLite file that `marquee doctor --repair` can move aside

    def error(self) -> StorageError:
        return StorageError(f"{self.detail}. Fix: {self.fix}" if self.fix else self.detail)


def repair_command(path: Path) -> str:
    return (f"marquee doctor --repair (moves {path.name} aside as {path.name}.damaged-<time> and starts an empty "
            f"one), or restore {path} from a backup")


def check_database(url: URL, connect_timeout: int = 10) -> DatabaseHealth:
    path = sqlite_path(url)
    return _check_sqlite(path) if path is not None else _check_server(url, connect_timeout)


def _check_sqlite(path: Path) -> DatabaseHealth:
    # Only SQLite itself opens the file: a plain open() + close() in a process that has connections to it would
    # drop that process's POSIX locks, and another process could then rebuild the WAL index under it
    # (sqlite.org/howtocorrupt.html §2.2).
    from agent.storage.schema import CURRENT_VERSION

    where = f"session database {path}"
    if not path.exists():
        return DatabaseHealth(True, f"SQLite {path} (created on first use)")
    if not path.is_file():
        return DatabaseHealth(False, f"{where} is not a file", "move it away or set [storage] url to a file path")
    if not os.access(path, os.R_OK | os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
        return DatabaseHealth(False, f"{where} cannot be read and written by this user",
                              f"give this user read and write access to {path} and its folder")
    size = path.stat().st_size
    if size == 0:  # SQLite would take it for a new, empty database
        return DatabaseHealth(False, f"{where} is empty (0 bytes): it was truncated or never written",
                              repair_command(path), damaged=True)
    try:
        db = sqlite3.connect(path, timeout=10)
        try:
            problems = [row[0] for row in db.execute("PRAGMA quick_check")]
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            version = (db.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
                       if "schema_version" in tables else 0)
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:  # "database disk image is malformed", "file is not a database", …
        what = "is not a SQLite database" if "not a database" in str(exc) else "is damaged"
        return DatabaseHealth(False, f"{where} {what} ({exc})", repair_command(path), damaged=True)
    if problems != ["ok"]:
        found = "; ".join(" ".join(problem.split()) for problem in problems[:3])
        return DatabaseHealth(False, f"{where} is damaged (integrity check: {found})", repair_command(path),
                              damaged=True)
    if version > CURRENT_VERSION:
        return _too_new(where, version)
    return DatabaseHealth(True, f"SQLite {path}: integrity ok, schema v{version or '0 (first release)'}, "
                          f"{size / 1e6:.1f} MB")


def _check_server(url: URL, connect_timeout: int) -> DatabaseHealth:
    from sqlalchemy import text

    from agent.storage.schema import CURRENT_VERSION, stored_version

    where = redact(url)
    engine = make_engine(url, pool_size=1, connect_timeout=connect_timeout)
    try:
        with engine.connect() as conn:
            server = conn.execute(text("SHOW server_version")).scalar()
            version = stored_version(conn)
    except Exception as exc:  # noqa: BLE001 — any driver error means "cannot use it"; say which
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return DatabaseHealth(False, f"cannot use the session database {where}: {reason}",
                              "start PostgreSQL (for a local one: scripts/cluster.sh up), or correct [storage] url "
                              "(MARQUEE_STORAGE__URL)")
    finally:
        engine.dispose()
    if version is None:
        return DatabaseHealth(True, f"PostgreSQL {server} at {where}: empty (tables are created on first start)")
    if version > CURRENT_VERSION:
        return _too_new(where, version)
    pending = f", migrates to v{CURRENT_VERSION} on next start" if version < CURRENT_VERSION else ""
    return DatabaseHealth(True, f"PostgreSQL {server} at {where}: schema v{version}{pending}")


def _too_new(where: str, version: int) -> DatabaseHealth:
    from agent.storage.schema import CURRENT_VERSION

    return DatabaseHealth(False, f"{where} has schema version {version}, newer than this Marquee knows "
                          f"({CURRENT_VERSION})", "upgrade Marquee, or point [storage] url at another database")


def move_aside(path: Path) -> list[Path]:
    """Rename a damaged database and its WAL/SHM companions to `<name>.damaged-<UTC time>`; returns the new paths."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    moved = []
    for suffix in ("", *SIDE_FILES):
        source = path.with_name(path.name + suffix)
        if source.exists():
            target = path.with_name(f"{path.name}.damaged-{stamp}{suffix}")
            os.replace(source, target)
            moved.append(target)
    return moved
