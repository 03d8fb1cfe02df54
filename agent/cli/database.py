"""`marquee doctor`'s session-database part: the check, and what `--repair` does about a damaged SQLite file."""
from __future__ import annotations

import typer


def database_health(settings):
    """The session database's `DatabaseHealth` (SQLite integrity, or PostgreSQL reachability + schema)."""
    from agent.storage import DatabaseHealth, StorageError, check_database, database_url, parse_url

    try:
        url = parse_url(database_url(settings))
    except StorageError as exc:
        return DatabaseHealth(False, str(exc), "set [storage] url to sqlite:///PATH or postgresql://…")
    return check_database(url, settings.storage.connect_timeout)


def repair_database(settings, err: bool = False) -> None:
    """Move a damaged SQLite database aside (never deleted) and start an empty one; say what was done."""
    from agent.storage import Storage, StorageError, check_database, database_url, move_aside, parse_url
    from agent.storage.database import sqlite_path

    try:
        url = parse_url(database_url(settings))
    except StorageError as exc:
        typer.secho(f"repair: {exc}", fg=typer.colors.RED, err=True)
        return
    path = sqlite_path(url)
    health = check_database(url, settings.storage.connect_timeout)
    if path is None:
        if not health.ok:
            typer.secho(f"repair: {health.detail}; --repair only moves damaged SQLite files aside. Fix: {health.fix}",
                        fg=typer.colors.YELLOW, err=True)
        return
    if not health.damaged:
        if not health.ok:
            typer.secho(f"repair: {health.detail}; nothing to move aside. Fix: {health.fix}",
                        fg=typer.colors.YELLOW, err=True)
        return
    moved = move_aside(path)
    try:
        Storage(url).close()  # a new, empty database with the current schema
    except StorageError as exc:
        typer.secho(f"repair: moved the damaged database aside, but a new one cannot be created: {exc}",
                    fg=typer.colors.RED, err=True)
        return
    typer.secho(f"repair: {health.detail}.\n        moved it aside: {', '.join(str(p) for p in moved)} "
                f"(kept, not deleted: inspect or restore it from there)\n        started an empty session database "
                f"at {path}: earlier conversations and profiles are in the moved file", fg=typer.colors.YELLOW,
                err=err)
