"""MovieLens-100k from the files inside the `recbole==1.2.1` wheel (read by path, never imported).

The MovieLens licence forbids redistribution, so the repo never contains these files.
"""
from __future__ import annotations

import csv
import importlib.util
import re
from pathlib import Path

import numpy as np

from retrieval.catalog.errors import CatalogError, RowProblem
from retrieval.catalog.schema import Catalog, Dataset, Interactions, Item

INSTALL_HINT = "pip install --no-deps recbole==1.2.1   (or run `make setup`)"
_ARTICLE_SUFFIX = re.compile(r"^(?P<rest>.*), (?P<article>The|A|An|L'|La|Le|Les|Il|Das|Der|Die|El)$")


def movielens_dir() -> Path:
    """The folder of ml-100k atomic files inside the installed recbole wheel."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise CatalogError(f"MovieLens-100k data not found: the recbole wheel is not installed. Fix: {INSTALL_HINT}")
    folder = Path(list(spec.submodule_search_locations)[0]) / "dataset_example" / "ml-100k"
    if not (folder / "ml-100k.item").is_file():
        raise CatalogError(f"MovieLens-100k files missing under {folder}. Fix: {INSTALL_HINT}")
    return folder


def display_title(raw: str) -> str:
    """'Godfather, The' -> 'The Godfather'; 'Godfather: Part II, The' -> 'The Godfather: Part II'."""
    m = _ARTICLE_SUFFIX.match(raw.strip())
    if not m:
        return raw.strip()
    article = m["article"]
    sep = "" if article.endswith("'") else " "
    return f"{article}{sep}{m['rest']}"


def _rows(path: Path):
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = [h.split(":")[0] for h in next(reader)]
        for line_no, row in enumerate(reader, start=2):
            yield line_no, dict(zip(header, row))


def load_items(path: Path) -> list[Item]:
    items, problems = [], []
    for line_no, row in _rows(path):
        title = (row.get("movie_title") or "").strip()
        if not title:
            problems.append(RowProblem(path, line_no, "empty title"))
            continue
        year_text = (row.get("release_year") or "").strip()
        year = int(year_text) if year_text.isdigit() else None
        genres = tuple(g for g in (row.get("class") or "").split() if g != "unknown")
        items.append(Item(item_id=row["item_id"], title=display_title(title), year=year, genres=genres,
                          extra={"raw_title": title}))
    if problems:
        raise CatalogError(f"{path}: {len(problems)} bad rows", problems)
    return items


def load_movielens_100k(folder: Path | None = None) -> Dataset:
    folder = folder or movielens_dir()
    items = load_items(folder / "ml-100k.item")
    index = {it.item_id: i for i, it in enumerate(items)}
    user_ids: dict[str, int] = {}
    users, item_idx, ratings, stamps = [], [], [], []
    for _, row in _rows(folder / "ml-100k.inter"):
        users.append(user_ids.setdefault(row["user_id"], len(user_ids)))
        item_idx.append(index[row["item_id"]])
        ratings.append(float(row["rating"]))
        stamps.append(int(float(row["timestamp"])))
    counts = np.bincount(np.asarray(item_idx), minlength=len(items))
    items = [it.with_(popularity=int(c)) for it, c in zip(items, counts)]
    inter = Interactions(
        user_ids=tuple(user_ids),
        users=np.asarray(users, dtype=np.int32),
        items=np.asarray(item_idx, dtype=np.int32),
        ratings=np.asarray(ratings, dtype=np.float32),
        timestamps=np.asarray(stamps, dtype=np.int64),
    )
    features = {row["user_id"]: {k: v for k, v in row.items() if k != "user_id"}
                for _, row in _rows(folder / "ml-100k.user")}
    return Dataset(catalog=Catalog(items, name="ml-100k"), interactions=inter, user_features=features)
