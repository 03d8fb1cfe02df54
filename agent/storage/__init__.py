"""Where conversations are kept: SQLite (default, `<home>/marquee.db`, WAL) or PostgreSQL, chosen by
`[storage] url`; one interface for both (docs/ARCHITECTURE.md §8).

    storage = Storage.from_settings(settings)          # or Storage(path) / Storage("postgresql://…")
    state, version = storage.load_session_versioned("s1")
    storage.commit("s1", lambda stored, version: new_state, owner="alice", user_message="…", reply="…")

database.py (URL → engine), schema.py (tables + versioned migrations), health.py (checks and repair for
`marquee doctor`), store.py (`Storage`).
"""
from agent.storage.database import StorageError, database_url, parse_url, redact
from agent.storage.health import DatabaseHealth, check_database, move_aside
from agent.storage.schema import CURRENT_VERSION
from agent.storage.store import Storage

__all__ = ["CURRENT_VERSION", "DatabaseHealth", "Storage", "StorageError", "check_database", "database_url",
           "move_aside", "parse_url", "redact"]
