"""`ItemStore`: the catalog in Chroma, searched by meaning with hard constraints as `where` filters.

One code path for both deployments: `chromadb.PersistentClient(<home>/chroma)` by default, or
`chromadb.HttpClient` when `store.chroma_url` / MARQUEE_CHROMA_URL is set; everything else is the
same client API. Chroma always gets OUR embedding function, and we pass vectors explicitly.

Atomic, incremental index builds (why and how):
  Chroma has no multi-collection transactions, so a build never writes into the collection that is
  answering queries. Data lives in immutable snapshot collections `<collection>.v<stamp>`; a tiny
  pointer collection `<collection>.active` names the live one in its metadata. A build
    1. diffs the catalog against the live snapshot by content hash (`doc_hash` per item),
    2. creates a staging snapshot, copies the still-valid vectors over and embeds only new/changed
       items (progress bar), checks the count,
    3. switches the pointer with ONE metadata update (a single SQLite transaction in Chroma), and
    4. drops older snapshots and leftovers of crashed builds (their collections, and the segment folders
     Chroma leaves on disk), never the live one.
  A crash or SIGKILL before step 3 leaves the pointer — and so every reader — on the previous
  snapshot; the orphaned staging collection is removed by the next build. A reader that loses a
  race with step 4 re-reads the pointer and retries once.

Damage (`retrieval.store_check`): `verify()` checks the files before Chroma loads them and probes the
live snapshot; `index()` never reads or copies from a damaged snapshot: it moves the damaged files to
`<home>/quarantine/` (never deletes them) and embeds every item into a new snapshot.

Hard constraints (genres any/all, excluded genres, year range, excluded ids) never rely on ranking luck:
  * filter_mode "where": translated to a Chroma `where` (`constraints_to_where`), Chroma pre-filters;
  * filter_mode "auto" (default): evaluated over an in-memory `FactsTable` of the snapshot, Chroma only
    ranks. Local Chroma scans every matching row for a `where` (0.5–1.7 s per query at 100k items on
    this machine), which would miss the 50 ms target by far; servers with metadata indices can use "where".
  In both modes every hit is re-checked on its stored facts before it is returned.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlparse

import numpy as np

from retrieval.catalog.schema import Catalog, Item
from retrieval.config import StoreConfig
from retrieval.constraints import Constraints, FactsTable, constraints_to_where
from retrieval.embeddings import ChromaEmbeddingFunction, SentenceEncoder
from retrieval.indexing import (IndexDamagedError, IndexNotBuiltError, IndexPlan, StoreError, facts_of,
                                item_from_metadata, plan)
from retrieval.store_build import POINTER_SUFFIX, SnapshotBuilder
from retrieval.store_check import REPAIR_FIX, SnapshotChecker

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

MAX_ANN_FETCH = 3000  # beyond this many neighbours, rank the few allowed items exactly instead


@dataclass(frozen=True)
class StoreHit:
    item_id: str
    score: float  # cosine similarity in [-1, 1]
    item: Item  # facts from the index metadata (title, year, genres, popularity)
    document: str


class _Snapshot(NamedTuple):
    """A live index snapshot; immutable once live, so its count and genre list can be cached."""

    name: str
    collection: Any
    count: int
    genres: list[str]


@dataclass(frozen=True)
class IndexStatus:
    location: str
    collection: str | None  # live snapshot, None when no index was built
    count: int
    encoder_matches: bool
    created: str | None
    plan: IndexPlan | None = None  # set when a catalog was given: what `index()` would do

    @property
    def stale(self) -> bool:
        return self.collection is None or not self.encoder_matches or bool(self.plan and not self.plan.up_to_date)


def connect(store_cfg: StoreConfig, home: Path):
    """A Chroma client: HTTP when `chroma_url` is set, else embedded under `<home>/chroma`."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False)
    if store_cfg.chroma_url:
        url = urlparse(store_cfg.chroma_url if "://" in store_cfg.chroma_url else f"http://{store_cfg.chroma_url}")
        if not url.hostname:
            raise StoreError(f"bad chroma_url {store_cfg.chroma_url!r}: expected http://host:port")
        try:
            client = chromadb.HttpClient(host=url.hostname, port=url.port or (443 if url.scheme == "https" else 8000),
                                         ssl=url.scheme == "https", settings=settings)
            client.heartbeat()
        except Exception as exc:  # connection refused, DNS, TLS … all mean the same to the user
            raise StoreError(f"cannot reach the Chroma server at {store_cfg.chroma_url} ({exc.__class__.__name__}). "
                             "Start one with `chroma run --path PATH --port PORT`, or unset MARQUEE_CHROMA_URL "
                             "to use the embedded store.") from exc
        return client
    path = Path(home) / "chroma"
    try:
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=settings)
    except OSError as exc:
        raise StoreError(f"cannot open the index folder {path}: {exc}. Fix: make {path} writable, or set "
                         "MARQUEE_HOME to a writable folder") from exc
    except Exception as exc:  # Chroma's Rust core reports a damaged database as InternalError
        raise IndexDamagedError(f"Chroma cannot open the index in {path} ({exc}). Fix: {REPAIR_FIX}") from exc


def forget_client(path: Path) -> None:
    """Drop Chroma's per-process cached client of an embedded store (after its folder was moved away), so
    the next client opens the folder afresh instead of the moved database."""
    from chromadb.api.shared_system_client import SharedSystemClient

    key = str(path)
    system = SharedSystemClient._identifier_to_system.pop(key, None)  # Chroma keeps one system per path
    SharedSystemClient._identifier_to_refcount.pop(key, None)
    if system is not None:
        try:
            system.stop()
        except Exception:  # noqa: BLE001 - a half-started system may not stop cleanly; it is dropped anyway
            pass


class ItemStore(SnapshotBuilder, SnapshotChecker):
    """Items of one catalog in Chroma: `index()` (incremental, atomic), `search()` (filtered), `verify()`."""

    def __init__(self, store_cfg: StoreConfig, encoder: SentenceEncoder, home: str | Path):
        self.cfg = store_cfg
        self.encoder = encoder
        self.home = Path(home)
        self._ef = ChromaEmbeddingFunction(encoder)
        self._client = None
        # Live snapshot cache: (name, Collection, count, genres). Snapshots never change once live, so
        # only the pointer has to be read per call (another process may have switched it).
        self._live: _Snapshot | None = None
        self._facts_cache: dict[str, FactsTable] = {}  # snapshot name -> its facts (in-memory filtering)

    # -- plumbing -------------------------------------------------------------------------------
    @property
    def client(self):
        if self._client is None:
            self._client = connect(self.cfg, self.home)
        return self._client

    @property
    def location(self) -> str:
        return self.cfg.chroma_url or str(self.home / "chroma")

    @property
    def chroma_dir(self) -> Path | None:
        """The embedded store's folder; None with a Chroma server (its files are the server's)."""
        return None if self.cfg.chroma_url else self.home / "chroma"

    def _close_client(self) -> None:
        if self._client is not None and self.chroma_dir is not None:
            forget_client(self.chroma_dir)
        self._client, self._live, self._facts_cache = None, None, {}

    @property
    def pointer_name(self) -> str:
        return self.cfg.collection + POINTER_SUFFIX

    def _collection(self, name: str, create: bool = False, metadata: dict | None = None):
        if create:
            return self.client.create_collection(name, metadata=metadata, embedding_function=self._ef,
                                                 configuration={"hnsw": {"space": "cosine"}})
        return self.client.get_collection(name, embedding_function=self._ef)

    def _live_name(self) -> str | None:
        from chromadb.errors import NotFoundError

        try:
            pointer = self.client.get_collection(self.pointer_name, embedding_function=self._ef)
        except NotFoundError:
            return None
        return (pointer.metadata or {}).get("active")

    def _live_snapshot(self, required: bool = True) -> _Snapshot | None:
        name = self._live_name()
        if name is None:
            if required:
                raise IndexNotBuiltError(f"no search index in {self.location} (collection {self.cfg.collection!r}). "
                                         "Fix: run `marquee index`")
            return None
        live = self._live
        if live is None or live.name != name:
            col = self._collection(name)
            live = self._live = _Snapshot(name, col, col.count(),
                                          json.loads((col.metadata or {}).get("marquee_genres", "[]")))
        return live

    def _with_live(self, fn):
        """Run fn(live snapshot); if a concurrent build dropped it meanwhile, re-read the pointer once."""
        from chromadb.errors import NotFoundError

        try:
            return fn(self._live_snapshot())
        except NotFoundError:
            self._live = None
            return fn(self._live_snapshot())

    # -- reading --------------------------------------------------------------------------------
    def count(self) -> int:
        live = self._live_snapshot(required=False)
        return 0 if live is None else live.count

    def genres(self) -> list[str]:
        live = self._live_snapshot(required=False)
        return [] if live is None else list(live.genres)

    def status(self, catalog: Catalog | None = None) -> IndexStatus:
        snapshot = self._live_snapshot(required=False)
        live = snapshot.collection if snapshot else None
        if live is None:
            return IndexStatus(self.location, None, 0, False, None, plan(catalog, None) if catalog else None)
        meta = live.metadata or {}
        matches = meta.get("marquee_encoder") == self.encoder.identity
        the_plan = self._plan(catalog, live, rebuild=False) if catalog is not None else None
        return IndexStatus(self.location, live.name, live.count(), matches, meta.get("marquee_created"), the_plan)

    def embeddings(self, item_ids: Sequence[str]) -> np.ndarray:
        """Stored vectors of `item_ids`, in that order (KeyError naming any id not in the index)."""
        ids = list(item_ids)
        if not ids:
            return np.zeros((0, self.encoder.dimension), dtype=np.float32)
        got = self._with_live(lambda live: live.collection.get(ids=list(dict.fromkeys(ids)), include=["embeddings"]))
        by_id = dict(zip(got["ids"], got["embeddings"]))
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise KeyError(f"item ids not in the index: {missing[:10]}{' …' if len(missing) > 10 else ''}")
        return np.asarray([by_id[i] for i in ids], dtype=np.float32)

    def _canonical(self, constraints: Constraints | None, known: list[str]) -> Constraints | None:
        """Map genre names to the catalog's spelling, case-insensitively ('sci-fi' -> 'Sci-Fi')."""
        if constraints is None:
            return None
        spelling = {g.lower(): g for g in known}
        fix = lambda names: frozenset(spelling.get(g.lower(), g) for g in names)  # noqa: E731
        return replace(constraints, include_genres=fix(constraints.include_genres),
                       exclude_genres=fix(constraints.exclude_genres))

    def search(self, query: str, k: int, constraints: Constraints | None = None) -> list[tuple[str, float]]:
        """(item_id, cosine similarity) best first; every hit satisfies `constraints`."""
        return [(h.item_id, h.score) for h in self.search_hits(query, k, constraints)]

    def search_hits(self, query: str, k: int, constraints: Constraints | None = None) -> list[StoreHit]:
        if k <= 0:
            return []
        vector = self.encoder.encode_query(query)
        return self.search_vector(vector, k, constraints)

    def search_vector(self, vector: np.ndarray, k: int, constraints: Constraints | None = None) -> list[StoreHit]:
        """Nearest items to a vector (e.g. a liked item's embedding), constraints enforced."""
        return self._with_live(lambda live: self._search(live, np.asarray(vector, dtype=np.float32), k, constraints))

    def _search(self, live: _Snapshot, vector: np.ndarray, k: int, constraints: Constraints | None) -> list[StoreHit]:
        constraints = self._canonical(constraints, live.genres)
        if constraints_to_where(constraints) is None:  # nothing to filter
            return self._query(live, vector, min(k, live.count), None, None)[0]
        if self.cfg.filter_mode == "where":
            return self._search_where(live, vector, k, constraints)
        return self._search_in_memory(live, vector, k, constraints)

    def _search_where(self, live: _Snapshot, vector: np.ndarray, k: int, constraints: Constraints) -> list[StoreHit]:
        """Hard constraints as a Chroma `where` (pre-filter inside Chroma)."""
        if constraints.include_genres:
            usable = constraints.include_genres & set(live.genres)
            if not usable or (constraints.genre_mode == "all" and usable != constraints.include_genres):
                return []  # asked for a genre this catalog does not have: nothing can qualify
            constraints = replace(constraints, include_genres=frozenset(usable))
        where, n = constraints_to_where(constraints), min(k, live.count)
        while n > 0:
            hits, returned = self._query(live, vector, n, where, constraints)
            if len(hits) >= k or returned < n or n >= live.count:  # returned < n: that is all that matches
                return hits[:k]
            n = min(live.count, n * 4)  # verification dropped some (should not happen): ask for more
        return []

    def _search_in_memory(self, live: _Snapshot, vector: np.ndarray, k: int,
                          constraints: Constraints) -> list[StoreHit]:
        """Constraints evaluated over the snapshot's FactsTable; Chroma ranks (why: see `indexing.facts_of`).

        Nearest neighbours are over-fetched (ids and distances only: cheap) in proportion to the share
        of allowed items; the top k allowed among them ARE the filtered top k, since any better allowed
        item would rank among them too. When few items are allowed, they are ranked exactly instead.
        """
        facts = self._facts(live)
        mask = facts.mask(constraints)
        allowed = int(mask.sum())
        if allowed == 0:
            return []
        k, total = min(k, allowed), live.count
        n = min(total, max(4 * k, math.ceil(2 * k * total / allowed)))  # 2x margin over the expected need
        while True:
            if n > MAX_ANN_FETCH and n < total:
                picked = self._rank_exactly(live, vector, facts.ids[mask].tolist(), k)
                break
            res = live.collection.query(query_embeddings=[vector], n_results=n, include=["distances"])
            ids, dists = res["ids"][0], res["distances"][0]
            picked = [(i, 1.0 - d) for i, d in zip(ids, dists) if i in facts.row and mask[facts.row[i]]][:k]
            if len(picked) >= k or len(ids) < n or n >= total:
                break
            n = min(total, n * 4)
        got = live.collection.get(ids=[i for i, _ in picked], include=["metadatas", "documents"])
        found = {i: (m, d) for i, m, d in zip(got["ids"], got["metadatas"], got["documents"])}
        hits = []
        for item_id, score in picked:
            meta, doc = found[item_id]
            item = item_from_metadata(meta, doc)
            if constraints.allows(item):  # every hit re-checked on its stored facts: never a violation
                hits.append(StoreHit(item_id, float(score), item, doc or ""))
        return hits

    def _rank_exactly(self, live: _Snapshot, vector: np.ndarray, ids: list[str], k: int) -> list[tuple[str, float]]:
        batch = min(self.client.get_max_batch_size(), 5000)
        scores: dict[str, float] = {}
        for start in range(0, len(ids), batch):
            got = live.collection.get(ids=ids[start:start + batch], include=["embeddings"])
            sims = np.asarray(got["embeddings"], dtype=np.float32) @ vector
            scores.update(zip(got["ids"], sims.tolist()))
        return sorted(scores.items(), key=lambda kv: -kv[1])[:k]

    def _facts(self, live: _Snapshot) -> FactsTable:
        facts = self._facts_cache.get(live.name)
        if facts is None:
            indexed = self._indexed_metadata(live.collection)
            facts = self._facts_cache[live.name] = facts_of(indexed)
        return facts

    def _query(self, live: _Snapshot, vector: np.ndarray, n: int, where: dict | None,
               constraints: Constraints | None) -> tuple[list[StoreHit], int]:
        """(hits satisfying `constraints`, number Chroma returned) of the top-n by cosine, `where` applied."""
        if n <= 0:
            return [], 0
        res = live.collection.query(query_embeddings=[vector], n_results=n, where=where,
                                    include=["metadatas", "distances", "documents"])
        hits = []
        for item_id, meta, dist, doc in zip(res["ids"][0], res["metadatas"][0], res["distances"][0],
                                            res["documents"][0]):
            item = item_from_metadata(meta, doc)
            # Every hit is checked against the constraints: a violating item is never returned.
            if constraints is None or constraints.allows(item):
                hits.append(StoreHit(item_id, float(1.0 - dist), item, doc or ""))
        return hits, len(res["ids"][0])
