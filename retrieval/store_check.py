"""Is the search index intact? Checks of the embedded Chroma files and of the live snapshot's answers.

Why they exist: Chroma does not notice a damaged index. A truncated HNSW file makes items silently vanish
from results, a deleted segment folder is re-created empty (search answers with whatever was still in the
write-ahead log), and a garbled graph crashes Chroma's native reader with a segmentation fault, which no
`try` can catch. So the files are checked here, BEFORE Chroma loads them, and then the live snapshot is
asked questions whose answers are known:

  * cheap (every start: `RetrievalService.ensure_index`, `marquee index`): chroma.sqlite3 passes SQLite's
    `quick_check`; the live snapshot's HNSW files are complete and consistent (header, file sizes, every
    link pointing at an existing element, unit-length vectors, unique labels); the snapshot holds exactly
    the catalog; and a few catalog items, embedded now from their own documents, find themselves first;
  * thorough (`marquee doctor`): the same, with more probe items, and every stored vector finds its own
    item (a search of the whole graph).

The HNSW layout read here is Chroma's persisted hnswlib index (`<chroma>/<segment uuid>/`): `header.bin`
(hnswlib's header fields behind a 4-byte version), `data_level0.bin` (per element: a link count, maxM0
neighbour ids, the vector, the 8-byte label), `length.bin` (per element, a float32), `link_lists.bin`
(per element: a uint32 byte count, then that many bytes of upper-level lists) and `index_metadata.pickle`
(id ↔ label maps; checked as a well-formed pickle stream, never unpickled).
"""
from __future__ import annotations

import pickletools
import re
import sqlite3
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retrieval.catalog.schema import Catalog
from retrieval.indexing import IndexDamagedError
from retrieval.integrity import sqlite_problem

SQLITE_FILE = "chroma.sqlite3"
HNSW_FILES = ("header.bin", "data_level0.bin", "length.bin", "link_lists.bin", "index_metadata.pickle")
HEADER = struct.Struct("<IQQQQQQiIQQQdQ")  # version, offsetLevel0, max_elements, cur_element_count,
# size_data_per_element, label_offset, offsetData, maxlevel, enterpoint_node, maxM, maxM0, M, mult, ef_construction
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PROBES_CHEAP = 5
PROBES_THOROUGH = 25
MIN_PROBE_COSINE = 0.98  # an item's stored vector vs its document embedded now (bf16/fp32 differ by ~1e-3)
NEIGHBOURS = 10  # an item must be among the nearest this many of its own vector (HNSW search is approximate)
MISSED_SHARE = 0.002  # a thorough self-search tolerates this share of misses (approximate search), never more
REPAIR_FIX = "marquee doctor --repair   (moves the damaged files to <home>/quarantine/ and rebuilds the index)"


@dataclass(frozen=True)
class Damage:
    """One thing wrong with the index, in words, and the files a repair moves aside."""

    what: str
    paths: tuple[Path, ...] = ()
    whole_store: bool = False  # chroma.sqlite3 itself is unusable: the whole Chroma folder goes


@dataclass
class IndexHealth:
    location: str
    damage: list[Damage] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)  # what was checked and found right
    status: object | None = None  # the store's IndexStatus when the index could be read
    leftovers: list[Path] = field(default_factory=list)  # folders of dropped snapshots (removed by the next build)

    @property
    def ok(self) -> bool:
        return not self.damage

    @property
    def whole_store(self) -> bool:
        return any(d.whole_store for d in self.damage)

    def summary(self) -> str:
        if self.damage:
            return "; ".join(d.what for d in self.damage)
        return "intact: " + ", ".join(self.passed) if self.passed else "nothing to check"


# ------------------------------------------------------------------------------------- chroma.sqlite3


def _rows(db_path: Path, sql: str, args: Sequence = ()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30.0)
    try:
        return conn.execute(sql, tuple(args)).fetchall()
    finally:
        conn.close()


def live_segment(chroma_dir: Path, collection: str) -> tuple[str | None, str | None, bool]:
    """(live snapshot name, its vector segment id, whether Chroma has persisted HNSW files for it), read
    from chroma.sqlite3 without Chroma. (None, None, False) when no index was built."""
    db = chroma_dir / SQLITE_FILE
    rows = _rows(db, "SELECT m.str_value FROM collection_metadata m JOIN collections c ON c.id = m.collection_id "
                     "WHERE c.name = ? AND m.key = 'active'", (collection + ".active",))
    if not rows or not rows[0][0]:
        return None, None, False
    name = rows[0][0]
    seg = _rows(db, "SELECT s.id FROM segments s JOIN collections c ON c.id = s.collection "
                    "WHERE c.name = ? AND s.scope = 'VECTOR'", (name,))
    if not seg:
        return name, None, False
    persisted = _rows(db, "SELECT seq_id FROM max_seq_id WHERE segment_id = ?", (seg[0][0],))
    return name, seg[0][0], bool(persisted)


def segment_dir(chroma_dir: Path, snapshot: str) -> Path | None:
    """The folder of a snapshot's HNSW files (it may not exist yet: small collections live in the WAL)."""
    try:
        seg = _rows(chroma_dir / SQLITE_FILE, "SELECT s.id FROM segments s JOIN collections c "
                    "ON c.id = s.collection WHERE c.name = ? AND s.scope = 'VECTOR'", (snapshot,))
    except sqlite3.Error:
        return None
    return chroma_dir / seg[0][0] if seg else None


def orphan_segment_dirs(chroma_dir: Path) -> list[Path]:
    """Segment folders no collection owns any more (Chroma's delete_collection leaves them on disk)."""
    if not (chroma_dir / SQLITE_FILE).is_file():
        return []
    try:
        known = {r[0] for r in _rows(chroma_dir / SQLITE_FILE, "SELECT id FROM segments")}
    except sqlite3.Error:
        return []
    return sorted(p for p in chroma_dir.iterdir() if p.is_dir() and UUID.match(p.name) and p.name not in known)


def chroma_file_damage(chroma_dir: Path, collection: str) -> tuple[list[Damage], list[str]]:
    """(damage, checks passed) of an embedded store's files, without opening Chroma."""
    db = chroma_dir / SQLITE_FILE
    if not db.exists():
        leftover = [p for p in chroma_dir.iterdir() if p.is_dir() and UUID.match(p.name)] if chroma_dir.is_dir() else []
        if leftover:  # segment folders without their database: the database was deleted, not "never built"
            return [Damage(f"{SQLITE_FILE} is missing but {len(leftover)} index folder(s) remain in {chroma_dir}",
                           (chroma_dir,), whole_store=True)], []
        return [], []
    problem = sqlite_problem(db)
    if problem is None:
        try:
            name, segment, persisted = live_segment(chroma_dir, collection)
        except sqlite3.Error as exc:
            problem = f"{SQLITE_FILE} is not a Chroma database ({exc})"
    if problem is not None:
        return [Damage(problem, (chroma_dir,), whole_store=True)], []
    passed = [f"{SQLITE_FILE} quick_check"]
    if name is None or segment is None or not persisted:
        return [], passed  # nothing built yet, or every vector is still in Chroma's log (checked by probes)
    folder = chroma_dir / segment
    problem = stable_hnsw_problem(folder)
    if problem is not None:
        return [Damage(f"snapshot {name}: {problem}", (folder,))], passed
    return [], passed + ["HNSW files"]


# ------------------------------------------------------------------------------------- HNSW files


def _signature(folder: Path) -> tuple:
    try:
        return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()))
    except OSError:
        return ()


def stable_hnsw_problem(folder: Path, tries: int = 3) -> str | None:
    """`hnsw_problem`, re-checked while the files change under it (a Chroma writer in another process): only
    a problem found on files that stayed the same during the check counts."""
    for attempt in range(tries):
        before = _signature(folder)
        problem = hnsw_problem(folder)
        if problem is None or _signature(folder) == before:
            return problem
        time.sleep(0.2 * (attempt + 1))
    return problem


def hnsw_problem(folder: Path) -> str | None:
    """Why the persisted HNSW index in `folder` cannot be right, or None. Reads sizes and headers, maps
    the level-0 file read-only and checks every element's links, vector and label."""
    if not folder.is_dir():
        return f"its index folder {folder.name}/ is missing"
    for name in HNSW_FILES:
        if not (folder / name).is_file():
            return f"{folder.name}/{name} is missing"
        if (folder / name).stat().st_size == 0:
            return f"{folder.name}/{name} is empty"
    raw = (folder / "header.bin").read_bytes()
    if len(raw) != HEADER.size:
        return f"{folder.name}/header.bin has {len(raw)} bytes, expected {HEADER.size}"
    (_version, offset0, max_elements, count, per_element, label_offset, offset_data, max_level, entry, max_m, max_m0,
     _m, _mult, _ef) = HEADER.unpack(raw)
    dim4 = label_offset - offset_data
    if (offset0 != 0 or not 0 < count <= max_elements or max_m < 1 or max_m0 < 1 or offset_data != 4 + 4 * max_m0
            or dim4 <= 0 or dim4 % 4 or per_element != label_offset + 8 or not 0 <= max_level < 64 or entry >= count):
        return f"{folder.name}/header.bin is damaged (inconsistent fields)"
    sizes = {name: (folder / name).stat().st_size for name in HNSW_FILES}
    if sizes["data_level0.bin"] < count * per_element:
        return (f"{folder.name}/data_level0.bin has {sizes['data_level0.bin']} bytes, "
                f"{count} elements need {count * per_element} (truncated)")
    if sizes["length.bin"] < count * 4:
        return f"{folder.name}/length.bin has {sizes['length.bin']} bytes, {count} elements need {count * 4} (truncated)"
    lengths = np.fromfile(folder / "length.bin", dtype="<f4", count=count)
    with np.errstate(all="ignore"):  # garbage bytes may be NaN or inf: that is the finding, not a warning
        unit = np.isfinite(lengths) & (np.abs(lengths.astype(np.float64) - 1.0) < 1e-2)
    if not unit.all():  # our encoder writes unit vectors
        return f"{folder.name}/length.bin is damaged (vector lengths that are not 1)"
    problem = _upper_levels_problem(folder / "link_lists.bin", count, max_m, max_level)
    if problem:
        return f"{folder.name}/link_lists.bin {problem}"
    problem = _level0_problem(folder / "data_level0.bin", count, max_m0, dim4 // 4)
    if problem:
        return f"{folder.name}/data_level0.bin {problem}"
    try:
        with open(folder / "index_metadata.pickle", "rb") as fh:
            for _ in pickletools.genops(fh):  # parses the opcode stream; builds no object
                pass
    except Exception as exc:  # noqa: BLE001 - any parse failure means a damaged file
        return f"{folder.name}/index_metadata.pickle is damaged ({exc.__class__.__name__})"
    return None


def _upper_levels_problem(path: Path, count: int, max_m: int, max_level: int) -> str | None:
    data = path.read_bytes()
    per_level = 4 + 4 * max_m
    pos = 0
    for _ in range(count):
        if pos + 4 > len(data):
            return "is truncated"
        (size,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if size % per_level or size // per_level > max_level or pos + size > len(data):
            return "is damaged (bad list size)"
        if size:
            levels = np.frombuffer(data, dtype="<u4", count=size // 4, offset=pos).reshape(-1, 1 + max_m)
            links = levels[:, 1:]
            used = np.arange(max_m)[None, :] < (levels[:, 0] & 0xFFFF)[:, None]
            if ((levels[:, 0] & 0xFFFF) > max_m).any() or (links[used] >= count).any():
                return "is damaged (links to elements that do not exist)"
        pos += size
    if pos != len(data):
        return f"is damaged ({len(data) - pos} bytes beyond the last list)"
    return None


def _level0_problem(path: Path, count: int, max_m0: int, dim: int) -> str | None:
    layout = np.dtype([("links", "<u2"), ("flags", "<u2"), ("ids", "<u4", (max_m0,)), ("vector", "<f4", (dim,)),
                       ("label", "<u8")])
    rows = np.memmap(path, dtype=layout, mode="r", shape=(count,))
    try:
        n_links = rows["links"].astype(np.int64)
        if (n_links > max_m0).any():
            return "is damaged (bad link counts)"
        used = np.arange(max_m0)[None, :] < n_links[:, None]
        if (rows["ids"][used] >= count).any():
            return "is damaged (links to elements that do not exist)"
        with np.errstate(all="ignore"):
            norms = np.linalg.norm(np.asarray(rows["vector"], dtype=np.float64), axis=1)
            bad = int((~np.isfinite(norms) | (np.abs(norms - 1.0) > 1e-2)).sum())
        if bad:  # a cosine index stores unit vectors: anything else is overwritten bytes
            return f"is damaged ({bad} of {count} stored vectors are not unit length)"
        if len(np.unique(rows["label"])) != count:
            return "is damaged (duplicate labels)"
    finally:
        del rows
    return None


# ------------------------------------------------------------------------------------- answers


def probe_items(item_ids: Sequence[str], n: int) -> list[str]:
    """n ids spread evenly over `item_ids` (deterministic, so every start probes the same items)."""
    if not item_ids or n <= 0:
        return []
    if len(item_ids) <= n:
        return list(item_ids)
    return [item_ids[round(i * (len(item_ids) - 1) / (n - 1))] if n > 1 else item_ids[0] for i in range(n)]


def probe_problems(collection, encoder, catalog, item_ids: Sequence[str]) -> list[str]:
    """Each item's document, embedded now, must match the vector stored under its id (an exact look-up: a
    vector under the wrong id, or none, fails) and must find that item among its nearest neighbours (or an
    item with the same document: the catalog has duplicates). Returns what failed."""
    if not item_ids:
        return []
    items = [catalog[i] for i in item_ids]
    docs = [it.document() for it in items]
    wanted = encoder.encode(docs)
    got = collection.get(ids=list(item_ids), include=["embeddings"])
    stored = dict(zip(got["ids"], got["embeddings"]))
    res = collection.query(query_embeddings=wanted, n_results=min(NEIGHBOURS, collection.count()),
                           include=["documents"])
    problems = []
    for item, doc, vector, ids, found in zip(items, docs, wanted, res["ids"], res["documents"]):
        mine = stored.get(item.item_id)
        cosine = float(np.dot(vector, mine)) if mine is not None and np.all(np.isfinite(mine)) else float("nan")
        if mine is None:
            problems.append(f"{item.label!r} has no stored vector")
        elif not cosine >= MIN_PROBE_COSINE:
            problems.append(f"{item.label!r}'s stored vector does not match its document (cosine {cosine:.3f})")
        elif item.item_id not in ids and doc not in found:
            problems.append(f"{item.label!r} does not find itself (first hit: {ids[0] if ids else 'nothing'})")
    return problems


def self_query_problems(collection, page: int = 1000, limit: int = 50_000) -> tuple[list[str], int]:
    """Every stored vector (up to `limit`) must find its own item among its nearest neighbours (HNSW is
    approximate, so not always first; identical documents give identical vectors, hence a tie at distance 0
    also counts); returns (items not found, items checked)."""
    failures, checked = [], 0
    total = min(collection.count(), limit)
    for offset in range(0, total, page):
        got = collection.get(include=["embeddings"], limit=min(page, total - offset), offset=offset)
        if not got["ids"]:
            break
        vectors = np.asarray(got["embeddings"], dtype=np.float32)
        res = collection.query(query_embeddings=vectors, n_results=min(NEIGHBOURS, collection.count()),
                               include=["distances"])
        for own, ids, dists in zip(got["ids"], res["ids"], res["distances"]):
            if own not in ids and not (dists and dists[0] < 1e-5):
                failures.append(own)
        checked += len(got["ids"])
    return failures, checked


class SnapshotChecker:
    """`verify()` for `ItemStore` (which provides `chroma_dir`, `cfg`, `encoder`, `status`, `_live_snapshot`)."""

    def verify(self, catalog: Catalog | None = None, thorough: bool = False) -> IndexHealth:
        """Check the index without trusting it (see `retrieval.store_check`); never raises for damage.

        Cheap (every start): files, count and a few probes. `thorough` (doctor): more probes and a search
        for every stored vector. A stale index (catalog or encoder changed) is not damage: its status says
        so and `index()` updates it; only its unchanged items are probed.
        """
        health = IndexHealth(self.location)
        if self.chroma_dir is not None:
            damage, health.passed = chroma_file_damage(self.chroma_dir, self.cfg.collection)
            health.damage += damage
            if damage:  # never let Chroma load damaged files: a garbled graph crashes its native reader
                return health
            health.leftovers = orphan_segment_dirs(self.chroma_dir)
        from chromadb.errors import NotFoundError

        try:
            status = health.status = self.status(catalog)
        except NotFoundError as exc:
            health.damage.append(Damage(f"the index pointer names a snapshot that does not exist ({exc})"))
            return health
        except IndexDamagedError as exc:
            health.damage.append(Damage(str(exc).split(". Fix:")[0], (self.chroma_dir,) if self.chroma_dir else (),
                                        whole_store=self.chroma_dir is not None))
            return health
        if status.collection is None or not status.encoder_matches:
            return health
        live = self._live_snapshot()
        folder = segment_dir(self.chroma_dir, live.name) if self.chroma_dir is not None else None
        paths = (folder,) if folder is not None and folder.exists() else ()
        if catalog is not None:
            reusable = status.plan.unchanged if status.plan is not None else catalog.item_ids
            probes = probe_items(reusable, PROBES_THOROUGH if thorough else PROBES_CHEAP)
            problems = probe_problems(live.collection, self.encoder, catalog, probes)
            if problems:
                health.damage.append(Damage(f"snapshot {live.name}: {len(problems)} of {len(probes)} probe "
                                            f"searches failed ({problems[0]})", paths))
            else:
                health.passed.append(f"{len(probes)} probe searches")
        if thorough and not health.damage:
            lost, checked = self_query_problems(live.collection)
            if len(lost) > MISSED_SHARE * checked:
                health.damage.append(Damage(f"snapshot {live.name}: {len(lost)} of {checked} stored vectors do "
                                            f"not find their own item (e.g. {lost[0]})", paths))
            else:
                health.passed.append(f"all {checked} vectors findable" if not lost else
                                     f"{checked - len(lost)} of {checked} vectors findable (approximate search)")
        return health
