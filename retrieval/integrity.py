"""Damaged files under MARQUEE_HOME: cheap checks, and moving them aside (never deleting them).

Marquee keeps two kinds of files (README, "Files Marquee keeps"): derived data that can be rebuilt from the
catalog and the installed wheels (the Chroma index, the converted LLM, the SASRec cache), and data that
cannot (marquee.db, langgraph.db, enriched descriptions, trained adapters, eval reports). A damaged file
of either kind is never trusted and never silently replaced: `quarantine` moves it to
`<home>/quarantine/<UTC time>/<its path under home>`, where a person can inspect or restore it, and the
caller rebuilds (derived data) or reports the exact fix (everything else).

The checks here read only headers and sizes, or ask SQLite itself (`PRAGMA quick_check`); they never
unpickle and never load a model.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sqlite3
import struct
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

QUARANTINE_DIR = "quarantine"
SQLITE_MAGIC = b"SQLite format 3\x00"
MANIFEST = "marquee-files.json"  # size + sha256 of every file of a folder Marquee wrote (e.g. the converted LLM)


def quarantine(home: Path | str, paths: Iterable[Path | str], stamp: str | None = None) -> list[Path]:
    """Move each existing path to `<home>/quarantine/<stamp>/<path relative to home>`; returns the new places.

    Paths outside `home` keep their own name under the stamp folder. Moves within one file system are
    renames (atomic); nothing is ever deleted.
    """
    home = Path(home)
    stamp = stamp or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = home / QUARANTINE_DIR / stamp
    moved = []
    for path in map(Path, paths):
        if not path.exists() and not path.is_symlink():
            continue
        try:
            relative = path.resolve().relative_to(home.resolve())
        except ValueError:
            relative = Path(path.name)
        target = base / relative
        n = 1
        while target.exists():  # the same path twice in one stamp: keep both
            target = target.with_name(f"{relative.name}.{n}")
            n += 1
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(target))
        log.warning("moved damaged %s to %s", path, target)
        moved.append(target)
    return moved


def sha256(path: Path | str, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def safetensors_problem(path: Path | str) -> str | None:
    """Why a .safetensors file cannot be right (missing, empty, bad header, wrong size), or None.

    The format is an 8-byte little-endian header length, a JSON header giving each tensor's byte range,
    then the data: a truncated or padded file is caught without reading the tensors.
    """
    path = Path(path)
    if not path.is_file():
        return f"{path.name} is missing"
    size = path.stat().st_size
    if size < 8:
        return f"{path.name} is {'empty' if size == 0 else 'truncated'} ({size} bytes)"
    try:
        with open(path, "rb") as fh:
            (header_len,) = struct.unpack("<Q", fh.read(8))
            if header_len > min(size - 8, 100 << 20):
                return f"{path.name} has a damaged header (claims {header_len} header bytes in a {size}-byte file)"
            header = json.loads(fh.read(header_len))
        ends = [int(t["data_offsets"][1]) for name, t in header.items() if name != "__metadata__"]
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        return f"{path.name} has an unreadable header ({exc.__class__.__name__})"
    expected = 8 + header_len + max(ends, default=0)
    if size != expected:
        return f"{path.name} has {size} bytes, its header describes {expected}"
    return None


def sqlite_problem(path: Path | str, thorough: bool = True) -> str | None:
    """Why a SQLite file is unusable (empty, not SQLite, fails `PRAGMA quick_check`), or None; a missing
    file is not a problem (it is created when first needed). Never creates or writes the file."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        size = path.stat().st_size
        if size == 0:
            return f"{path.name} is empty (0 bytes)"
        with open(path, "rb") as fh:
            if fh.read(16) != SQLITE_MAGIC:
                return f"{path.name} is not a SQLite database (bad header)"
        if not thorough:
            return None
        # mode=rw: never creates the file; a hot journal left by a killed writer is rolled back, as the
        # owner of the file would do on its next open.
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=30.0)
        try:
            rows = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
        finally:
            conn.close()
    except (OSError, sqlite3.Error) as exc:
        return f"{path.name} is unreadable ({exc})"
    if rows != ["ok"]:
        return f"{path.name} fails SQLite's quick_check ({'; '.join(rows[:2])})"
    return None


def json_problem(path: Path | str) -> str | None:
    """Why a JSON file cannot be read, or None (a missing file is reported too)."""
    path = Path(path)
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{path.name} is missing"
    except (OSError, ValueError) as exc:
        return f"{path.name} is not valid JSON ({exc.__class__.__name__})"
    return None


def write_manifest(folder: Path | str) -> Path:
    """Record the size and sha256 of every file in `folder` (written last, atomically)."""
    folder = Path(folder)
    files = {p.name: {"size": p.stat().st_size, "sha256": sha256(p)}
             for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST and not p.name.startswith(".")}
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps({"files": files}, indent=1) + "\n", encoding="utf-8")
    tmp.replace(folder / MANIFEST)
    return folder / MANIFEST


def manifest_problem(folder: Path | str, hashes: bool = True) -> str | None:
    """Why `folder` no longer matches its manifest (a file missing, resized or changed), or None. A folder
    without a manifest has nothing to compare: None (the caller checks its structure instead)."""
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        return None
    try:
        files = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"]
        for name, want in files.items():
            path = folder / name
            if not path.is_file():
                return f"{name} is missing"
            if path.stat().st_size != int(want["size"]):
                return f"{name} has {path.stat().st_size} bytes, {want['size']} were written"
            if hashes and sha256(path) != want["sha256"]:
                return f"{name} has changed since it was written (sha256 differs)"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{MANIFEST} is unreadable ({exc.__class__.__name__})"
    return None
