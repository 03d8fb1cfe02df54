"""Enriched item descriptions (`marquee enrich` writes them, `load_dataset` overlays them).

File: `<home>/catalogs/<catalog name>/descriptions.jsonl`, one JSON object per line:
    {"item_id": "50", "description": "...", "generated": true, "model": "...", "prompt_version": "1"}
Later rows for the same item win, so re-enriching an item is an append.

Appends are atomic: the new file (old rows + new rows) is written to a temporary file, fsynced and
`os.replace`d over the old one under an exclusive lock, so a crash mid-write leaves the previous file
intact (the next append removes the crashed writer's temporary file) and two concurrent writers never
lose each other's rows. A file damaged some other way is reported with its bad lines, and
`keep_good_rows` (`marquee doctor --repair`) keeps the good ones and moves the original aside.
"""
from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from retrieval.catalog.errors import CatalogError, RowProblem

FILE_NAME = "descriptions.jsonl"


@dataclass(frozen=True)
class DescriptionRecord:
    item_id: str
    description: str
    generated: bool = True
    model: str = ""
    prompt_version: str = ""

    @classmethod
    def from_json(cls, row: Mapping) -> "DescriptionRecord":
        item_id, text = str(row.get("item_id", "")).strip(), str(row.get("description", "")).strip()
        if not item_id or not text:
            raise ValueError("needs a non-empty 'item_id' and 'description'")
        return cls(item_id=item_id, description=text, generated=bool(row.get("generated", True)),
                   model=str(row.get("model", "")), prompt_version=str(row.get("prompt_version", "")))


def descriptions_path(home: Path, catalog_name: str) -> Path:
    return Path(home) / "catalogs" / catalog_name / FILE_NAME


def read_descriptions(path: Path) -> dict[str, DescriptionRecord]:
    """item_id -> latest record; a missing file means no descriptions. Malformed lines raise CatalogError."""
    path = Path(path)
    if not path.is_file():
        return {}
    records: dict[str, DescriptionRecord] = {}
    problems = []
    for line_no, line in enumerate(path.read_bytes().decode("utf-8", errors="surrogateescape").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = DescriptionRecord.from_json(json.loads(line))
        except (json.JSONDecodeError, ValueError, AttributeError) as exc:
            problems.append(RowProblem(path, line_no, f"bad description row: {exc}"))
            continue
        records[record.item_id] = record
    if problems:
        raise CatalogError(f"{path}: {len(problems)} malformed description row(s) (fix: `marquee doctor --repair` "
                           f"keeps the {len(records)} good rows and moves the file to <home>/quarantine/; "
                           "`marquee enrich` then describes the lost items again)", problems)
    return records


def keep_good_rows(path: Path, home: Path) -> tuple[int, int, Path | None]:
    """Repair a damaged descriptions file: the original goes to `<home>/quarantine/`, the good rows are
    written back atomically. Returns (rows kept, rows dropped, where the original went); (n, 0, None) when
    the file was intact."""
    from retrieval.integrity import quarantine

    path = Path(path)
    try:
        return len(read_descriptions(path)), 0, None
    except CatalogError as exc:
        dropped = len(exc.problems)
    with _locked(path):
        good = []
        for line in path.read_bytes().decode("utf-8", errors="surrogateescape").splitlines():
            try:
                good.append(DescriptionRecord.from_json(json.loads(line)))
            except (json.JSONDecodeError, ValueError, AttributeError):
                continue
        payload = "".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in good).encode("utf-8")
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        moved = quarantine(home, [path])[0]
        os.replace(tmp, path)
    return len(good), dropped, moved


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def append_descriptions(path: Path, records: Iterable[DescriptionRecord | Mapping]) -> int:
    """Append records atomically; returns how many were written."""
    path = Path(path)
    rows = [r if isinstance(r, DescriptionRecord) else DescriptionRecord.from_json(r) for r in records]
    if not rows:
        return 0
    payload = "".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    with _locked(path):
        for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a writer killed mid-append (lock held)
            stale.unlink(missing_ok=True)
        old = path.read_bytes() if path.is_file() else b""
        if old and not old.endswith(b"\n"):
            old += b"\n"
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(old + payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return len(rows)
