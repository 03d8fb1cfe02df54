"""Load a user's own catalog and interaction log from CSV or JSONL, so another domain plugs in without code.

Catalog schema (CSV header or JSONL keys):
    item_id      required, unique, non-empty
    title        required, non-empty
    year         optional, a whole number from 1 to 9999 (empty = unknown)
    genres       optional, "A|B" or "A, B" (JSONL may also give a list)
    description  optional free text
    …            any other column is kept, as text, in `Item.extra`
Interaction schema:
    user_id, item_id   required (item_id must name a catalog item)
    rating             optional finite number, |rating| ≤ 1e9 (default 1.0: implicit feedback)
    timestamp          optional finite number, seconds, |timestamp| ≤ 2**53 (default 0; file order breaks ties)

Text fields lose control characters (a title cannot move the terminal's cursor); a CSV field longer
than the csv module's limit (128 KiB) is a bad row like any other, reported with its line.

Every problem is collected with its file and line (the CSV header is line 1) and reported at once in a
`CatalogError`; with `skip_bad_rows=True` bad rows are left out and listed in a `LoadReport` instead.
Nothing is ever half-loaded: the functions build new objects and return only after the whole file passed.
"""
from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retrieval.catalog.errors import CatalogError, RowProblem
from retrieval.catalog.schema import Catalog, Dataset, Interactions, Item

CATALOG_REQUIRED = ("item_id", "title")
CATALOG_KNOWN = (*CATALOG_REQUIRED, "year", "genres", "description")
INTERACTIONS_REQUIRED = ("user_id", "item_id")
_YEAR = re.compile(r"^[+-]?\d{1,30}$")  # digits: a whole number (its range is checked after)
_SURROGATE = re.compile(r"[\udc80-\udcff]")  # bytes that were not UTF-8 (decoded with surrogateescape)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
MAX_YEAR = 9999
NUMBER_LIMITS = {"rating": 1e9, "timestamp": float(2 ** 53)}  # beyond: float32 / int64 overflow, or nonsense


@dataclass
class LoadReport:
    """What a skip-and-report load left out (empty when every row was good)."""

    skipped: list[RowProblem] = field(default_factory=list)
    loaded: dict[str, int] = field(default_factory=dict)  # file -> rows loaded

    def __bool__(self) -> bool:
        return bool(self.skipped)

    def merge(self, other: "LoadReport") -> "LoadReport":
        return LoadReport(self.skipped + other.skipped, {**self.loaded, **other.loaded})

    def summary(self) -> str:
        loaded = ", ".join(f"{n} rows from {p}" for p, n in self.loaded.items())
        if not self.skipped:
            return f"loaded {loaded}"
        lines = [f"loaded {loaded}; skipped {len(self.skipped)} bad rows:"]
        lines += [f"  {p}" for p in self.skipped]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- reading


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise CatalogError(f"{path}: file not found")
    # surrogateescape keeps undecodable bytes as marker characters, so each bad row can be reported
    # with its own line number instead of failing the whole file at the first bad byte.
    return path.read_bytes().decode("utf-8-sig", errors="surrogateescape")


def _records(path: Path) -> Iterator[tuple[int, dict | None, str | None]]:
    """(line, record, problem) per data row; `problem` is set when the row cannot be parsed at all.

    The first record yielded for CSV is the header check: (1, None, problem) when columns are unusable.
    """
    suffix = path.suffix.lower()
    text = _read_text(path)
    if suffix in (".jsonl", ".ndjson"):
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            if _SURROGATE.search(line):
                yield line_no, None, "bad encoding: the line is not valid UTF-8"
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:  # JSONDecodeError, or a number too long to convert
                yield line_no, None, f"invalid JSON ({getattr(exc, 'msg', None) or exc})"
                continue
            if not isinstance(row, dict):
                yield line_no, None, "expected a JSON object per line"
                continue
            yield line_no, row, None
    elif suffix in (".csv", ".tsv"):
        reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if suffix == ".tsv" else ",")
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise CatalogError(f"{path}:1: empty file (expected a header row)") from None
        except csv.Error as exc:
            raise CatalogError(f"{path}:1: unreadable header row ({exc})") from None
        yield 1, {"__header__": header}, None
        start = reader.line_num + 1
        for line_no, row, problem in _csv_rows(reader, start):
            if problem:
                yield line_no, None, problem
                continue
            if not any(cell.strip() for cell in row):
                continue
            if any(_SURROGATE.search(cell) for cell in row):
                yield line_no, None, "bad encoding: the row is not valid UTF-8"
            elif len(row) != len(header):
                yield line_no, None, f"expected {len(header)} fields, found {len(row)}"
            else:
                yield line_no, dict(zip(header, row)), None
    else:
        raise CatalogError(f"{path}: unsupported file type {suffix!r} (use .csv, .tsv or .jsonl)")


def _csv_rows(reader, start: int) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """The reader's rows with their first line; a field over the csv module's size limit is a problem of
    that row (the reader then goes on with the next line), not a crash."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, None, f"unreadable CSV row ({exc})"
            start = reader.line_num + 1
            continue
        line_no, start = start, reader.line_num + 1  # a quoted field may span several lines
        yield line_no, row, None


def _rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict | None, str | None]]:
    """Data rows with the header/required-field checks applied (JSONL has no header: checked per row)."""
    for line_no, row, problem in _records(path):
        if row is not None and "__header__" in row:
            header = row["__header__"]
            missing = [c for c in required if c not in header]
            dupes = sorted({c for c in header if header.count(c) > 1})
            if missing or dupes:
                what = (f"missing required column(s): {', '.join(missing)}" if missing else "") + \
                       ("; " if missing and dupes else "") + \
                       (f"duplicate column(s): {', '.join(dupes)}" if dupes else "")
                raise CatalogError(f"{path}:1: {what} (header: {', '.join(header) or 'empty'}; "
                                   f"required: {', '.join(required)})",
                                   [RowProblem(path, 1, what)])
            continue
        if row is not None:
            missing = [c for c in required if c not in row]
            if missing:
                yield line_no, None, f"missing field(s): {', '.join(missing)}"
                continue
        yield line_no, row, problem


def _text(value) -> str:
    return "" if value is None else _CONTROL.sub(" ", str(value)).strip()


def _shown(value, limit: int = 40) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int with more digits than Python will print
        return "a number too long to show"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _split_genres(value) -> tuple[str, ...]:
    parts = value if isinstance(value, list) else re.split(r"[|,]", _text(value))
    seen: dict[str, None] = {}
    for part in parts:
        name = _text(part)
        if name:
            seen.setdefault(name, None)
    return tuple(seen)


def _parse_year(value) -> int | None:
    """A year from 0 to MAX_YEAR, or None when empty; ValueError saying what is wrong otherwise."""
    not_whole = f"year is not a whole number: {_shown(value)}"
    if isinstance(value, bool) or isinstance(value, (float, list, dict)):
        raise ValueError(not_whole)
    text = "" if isinstance(value, int) else _text(value)
    if not text and not isinstance(value, int):
        return None
    if not isinstance(value, int) and not _YEAR.match(text):
        raise ValueError(not_whole)
    year = value if isinstance(value, int) else int(text)
    if not 0 <= year <= MAX_YEAR:
        raise ValueError(f"year is out of range (0 to {MAX_YEAR}): {_shown(value)}")
    return year


def _finish(path: Path, problems: list[RowProblem], skip_bad_rows: bool, what: str) -> LoadReport:
    if problems and not skip_bad_rows:
        raise CatalogError(f"{path}: {len(problems)} bad {what} row(s); nothing was loaded "
                           "(fix them, or pass skip_bad_rows=True / catalog.skip_bad_rows to skip and report)",
                           problems)
    return LoadReport(skipped=problems)


# ---------------------------------------------------------------------------------------------- catalog


def load_catalog(path: str | Path, *, skip_bad_rows: bool = False, name: str | None = None) -> tuple[Catalog, LoadReport]:
    """A catalog from CSV/TSV/JSONL (schema in the module doc). Popularity is 0 until interactions are joined."""
    path = Path(path)
    items: list[Item] = []
    first_line: dict[str, int] = {}
    problems: list[RowProblem] = []
    for line_no, row, problem in _rows(path, CATALOG_REQUIRED):
        if problem:
            problems.append(RowProblem(path, line_no, problem))
            continue
        item_id, title = _text(row["item_id"]), _text(row["title"])
        row_problems = []
        if not item_id:
            row_problems.append("empty item_id")
        elif item_id in first_line:
            row_problems.append(f"duplicate item_id {item_id!r} (first on line {first_line[item_id]})")
        if not title:
            row_problems.append("empty title")
        for column in ("item_id", "title", "description"):
            if isinstance(row.get(column), (dict, list)):
                row_problems.append(f"{column} must be text, not {type(row[column]).__name__}")
        try:
            year = _parse_year(row.get("year"))
        except ValueError as exc:
            row_problems.append(str(exc))
            year = None
        if row_problems:
            problems.append(RowProblem(path, line_no, "; ".join(row_problems)))
            continue
        first_line[item_id] = line_no
        extra = {k: v if isinstance(v, str) else json.dumps(v) for k, v in row.items()
                 if k not in CATALOG_KNOWN and v is not None}
        items.append(Item(item_id=item_id, title=title, year=year, genres=_split_genres(row.get("genres")),
                          description=_text(row.get("description")), extra=extra))
    report = _finish(path, problems, skip_bad_rows, "catalog")
    if not items:
        raise CatalogError(f"{path}: no usable items (the catalog is empty)")
    report.loaded[str(path)] = len(items)
    return Catalog(items, name=name or path.stem), report


# ---------------------------------------------------------------------------------------------- interactions


def load_interactions(path: str | Path, catalog: Catalog, *,
                      skip_bad_rows: bool = False) -> tuple[Interactions, LoadReport]:
    """An interaction log whose items must all be in `catalog`; rows stay in file order."""
    path = Path(path)
    user_index: dict[str, int] = {}
    users, items, ratings, stamps = [], [], [], []
    problems: list[RowProblem] = []
    for line_no, row, problem in _rows(path, INTERACTIONS_REQUIRED):
        if problem:
            problems.append(RowProblem(path, line_no, problem))
            continue
        user_id, item_id = _text(row["user_id"]), _text(row["item_id"])
        row_problems = []
        if not user_id:
            row_problems.append("empty user_id")
        if item_id not in catalog:
            row_problems.append(f"unknown item_id {item_id!r} (not in the catalog)" if item_id else "empty item_id")
        numbers = {}
        for column, default in (("rating", 1.0), ("timestamp", 0.0)):
            raw = row.get(column)
            try:
                if isinstance(raw, bool):
                    raise ValueError
                numbers[column] = default if _text(raw) == "" else float(raw)
                if not np.isfinite(numbers[column]):
                    raise ValueError
            except (TypeError, ValueError, OverflowError):
                row_problems.append(f"{column} is not a number: {_shown(raw)}")
                continue
            if abs(numbers[column]) > NUMBER_LIMITS[column]:
                row_problems.append(f"{column} is out of range (at most ±{NUMBER_LIMITS[column]:.0e}): {_shown(raw)}")
        if row_problems:
            problems.append(RowProblem(path, line_no, "; ".join(row_problems)))
            continue
        users.append(user_index.setdefault(user_id, len(user_index)))
        items.append(catalog.index_of(item_id))
        ratings.append(numbers["rating"])
        stamps.append(int(numbers["timestamp"]))
    report = _finish(path, problems, skip_bad_rows, "interaction")
    report.loaded[str(path)] = len(users)
    return Interactions(user_ids=tuple(user_index), users=np.asarray(users, dtype=np.int32),
                        items=np.asarray(items, dtype=np.int32), ratings=np.asarray(ratings, dtype=np.float32),
                        timestamps=np.asarray(stamps, dtype=np.int64)), report


def empty_interactions() -> Interactions:
    return Interactions(user_ids=(), users=np.zeros(0, np.int32), items=np.zeros(0, np.int32),
                        ratings=np.zeros(0, np.float32), timestamps=np.zeros(0, np.int64))


def with_popularity(catalog: Catalog, interactions: Interactions) -> Catalog:
    """Popularity = number of interactions per item in the loaded log."""
    counts = np.bincount(interactions.items, minlength=len(catalog))
    return Catalog((it.with_(popularity=int(c)) for it, c in zip(catalog, counts)), name=catalog.name)


def load_user_dataset(catalog_path: str | Path, interactions_path: str | Path | None = None, *,
                      skip_bad_rows: bool = False, name: str | None = None) -> tuple[Dataset, LoadReport]:
    """Catalog + optional interaction log as a `Dataset` (popularity joined), with the skip report."""
    catalog, report = load_catalog(catalog_path, skip_bad_rows=skip_bad_rows, name=name)
    if interactions_path is None:
        return Dataset(catalog=catalog, interactions=empty_interactions()), report
    interactions, inter_report = load_interactions(interactions_path, catalog, skip_bad_rows=skip_bad_rows)
    return Dataset(catalog=with_popularity(catalog, interactions), interactions=interactions), report.merge(inter_report)


# ---------------------------------------------------------------------------------------------- configured dataset

MOVIELENS_SOURCES = ("movielens-100k", "ml-100k", "movielens")


def load_dataset_with_report(catalog_cfg, home: str | Path) -> tuple[Dataset, LoadReport]:
    """The configured dataset (MovieLens-100k or the user's files) with enriched descriptions overlaid.

    `catalog_cfg` is a `retrieval.config.CatalogConfig`; descriptions come from
    `<home>/catalogs/<catalog name>/descriptions.jsonl` and are marked `description_generated`.
    """
    from retrieval.catalog.descriptions import descriptions_path, read_descriptions
    from retrieval.catalog.movielens import load_movielens_100k

    source = str(catalog_cfg.source)
    if source.lower() in MOVIELENS_SOURCES:
        if catalog_cfg.interactions:
            raise CatalogError("catalog.interactions is only used with your own catalog file, "
                               f"not with source={source!r}")
        dataset, report = load_movielens_100k(), LoadReport()
    else:
        path = Path(source).expanduser()
        interactions = Path(catalog_cfg.interactions).expanduser() if catalog_cfg.interactions else None
        dataset, report = load_user_dataset(path, interactions, skip_bad_rows=catalog_cfg.skip_bad_rows)
    overlay = read_descriptions(descriptions_path(Path(home), dataset.catalog.name))
    if overlay:
        enriched = [it.with_(description=overlay[it.item_id].description,
                             description_generated=overlay[it.item_id].generated)
                    for it in dataset.catalog if it.item_id in overlay]
        dataset = Dataset(catalog=dataset.catalog.replace_items(enriched), interactions=dataset.interactions,
                          user_features=dataset.user_features)
    return dataset, report


def load_dataset(catalog_cfg, home: str | Path) -> Dataset:
    """`load_dataset_with_report` without the report (skipped rows, if any, are logged as a warning)."""
    import logging

    dataset, report = load_dataset_with_report(catalog_cfg, home)
    if report:
        logging.getLogger(__name__).warning(report.summary())
    return dataset
