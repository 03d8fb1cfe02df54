"""The database behind `agent.storage`: a URL from `[storage]`, and a SQLAlchemy engine for it.

    sqlite:///<home>/marquee.db            the default: one file, WAL, one writer at a time (BEGIN IMMEDIATE)
    postgresql://USER:PASSWORD@HOST/DB     shared by several `marquee serve` replicas (psycopg 3, a pool)

Both dialects run the same SQLAlchemy Core statements (agent/storage/store.py); only the connection set-up
differs, here. docs/ARCHITECTURE.md §8.
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_FILE = "marquee.db"
WRITE = "marquee_write"  # execution option: this transaction writes (SQLite takes the write lock up front)


class StorageError(RuntimeError):
    """The session database cannot be used; the message names the database and the exact fix."""


def database_url(settings) -> str:
    """`[storage] url`, or the SQLite file in MARQUEE_HOME."""
    return settings.storage.url or f"sqlite:///{Path(settings.home) / DEFAULT_FILE}"


def parse_url(url: str | Path) -> URL:
    """A URL (or a plain path to a SQLite file) as SQLAlchemy's URL, PostgreSQL through psycopg 3."""
    if isinstance(url, Path) or "://" not in str(url):
        return URL.create("sqlite", database=str(Path(url)))
    try:
        parsed = make_url(str(url))
    except ArgumentError as exc:
        raise StorageError(f"storage url {url!r} is not a database URL ({exc}); use sqlite:///PATH or "
                           "postgresql://USER:PASSWORD@HOST:PORT/DB") from None
    backend = parsed.get_backend_name()
    if backend == "postgres":  # the scheme Heroku and libpq tools write
        parsed = parsed.set(drivername="postgresql")
        backend = "postgresql"
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise StorageError("storage url sqlite:// needs a file: sqlite:///PATH/marquee.db (an in-memory "
                               "database would lose every session when the process ends)")
        return parsed
    raise StorageError(f"storage url {redact(parsed)}: unsupported database {backend!r}; use sqlite:///PATH or "
                       "postgresql://USER:PASSWORD@HOST:PORT/DB")


def redact(url: URL | str) -> str:
    """The URL without its password, for messages and logs."""
    parsed = url if isinstance(url, URL) else parse_url(url)
    return parsed.set(drivername=parsed.get_backend_name()).render_as_string(hide_password=True)


def sqlite_path(url: URL) -> Path | None:
    return Path(url.database) if url.get_backend_name() == "sqlite" else None


def make_engine(url: URL, pool_size: int = 5, pool_timeout: float = 30.0, connect_timeout: int = 10) -> Engine:
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, pool_size, pool_timeout, connect_timeout)
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_timeout=pool_timeout,
                         pool_pre_ping=True,  # a connection the server dropped (restart) is replaced, not used
                         connect_args={"connect_timeout": connect_timeout, "application_name": "marquee"})


def _sqlite_engine(url: URL, pool_size: int, pool_timeout: float, busy_seconds: int) -> Engine:
    # busy_timeout: a writer waits for another writer's transaction (another thread or process) instead of
    # failing at once; the 30 s of the previous sqlite3 code, or more when connect_timeout asks for it.
    busy_ms = max(30, busy_seconds) * 1000
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_timeout=pool_timeout,
                           connect_args={"timeout": busy_ms / 1000, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record) -> None:
        # sqlite3 must not open transactions itself: `_begin` below emits the right BEGIN (SQLAlchemy's
        # documented recipe for SQLite transaction control).
        dbapi_connection.isolation_level = None
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", f"busy_timeout={busy_ms}"):
            dbapi_connection.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        # A writing transaction takes the write lock up front (BEGIN IMMEDIATE): no read-then-upgrade
        # deadlock between two writers; readers never block in WAL mode.
        immediate = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
