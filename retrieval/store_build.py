"""How `ItemStore` builds its index: snapshot collections, a pointer switch, incremental by content hash.

See the module doc of `retrieval.store` for why this is atomic. This mixin holds the write side;
`ItemStore` (read side) provides `client`, `cfg`, `encoder`, `home`, `pointer_name`, `_collection`,
`_live_snapshot` and the `_facts_cache`.
"""
from __future__ import annotations

import fcntl
import time
import uuid
from collections.abc import Iterable
from contextlib import contextmanager

import numpy as np

from retrieval.catalog.schema import Catalog
from retrieval.constraints import FactsTable
from retrieval.indexing import (IndexPlan, IndexReport, StoreError, collection_metadata, facts_of, item_metadata,
                                plan)

POINTER_SUFFIX = ".active"
SNAPSHOT_INFIX = ".v"
EMBED_BATCH = 256
LOCK_WAIT_S = 900


class SnapshotBuilder:
    """Write side of `ItemStore`: incremental, atomic index builds."""

    def _indexed_metadata(self, col) -> dict[str, dict]:
        out: dict[str, dict] = {}
        page = min(self.client.get_max_batch_size(), 5000)
        for offset in range(0, col.count(), page):
            got = col.get(include=["metadatas"], limit=page, offset=offset)
            out.update(zip(got["ids"], got["metadatas"]))
        return out

    def _plan(self, catalog: Catalog, live, rebuild: bool) -> IndexPlan:
        if live is None:
            return plan(catalog, None)
        meta = live.metadata or {}
        indexed = self._indexed_metadata(live)
        # the metadata was read anyway: keep the snapshot's facts for in-memory filtering
        self._facts_cache[live.name] = facts_of(indexed)
        reason = ("--rebuild requested" if rebuild else
                  None if meta.get("marquee_encoder") == self.encoder.identity else "sentence encoder changed")
        return plan(catalog, indexed, reason)

    @contextmanager
    def _build_lock(self):
        lock_dir = self.home / "chroma" if not self.cfg.chroma_url else self.home
        lock_dir.mkdir(parents=True, exist_ok=True)
        with open(lock_dir / f".{self.cfg.collection}.index.lock", "w") as fh:
            # One build at a time. A second builder waits, then re-plans against the new index
            # (usually finding it up to date) instead of failing.
            deadline = time.monotonic() + LOCK_WAIT_S
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StoreError(f"another process has been building this index for over {LOCK_WAIT_S}s "
                                         f"(lock {fh.name}); try again when it is done") from None
                    time.sleep(0.2)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def index(self, catalog: Catalog, progress: bool = True, rebuild: bool = False) -> IndexReport:
        """Bring the index in line with `catalog`: embed only new/changed items, switch atomically."""
        started = time.perf_counter()
        with self._build_lock():
            snapshot = self._live_snapshot(required=False)
            live = snapshot.collection if snapshot else None
            the_plan = self._plan(catalog, live, rebuild)
            if live is not None and the_plan.up_to_date:
                self._drop_stale_snapshots(keep=live.name)
                return IndexReport(live.name, live.count(), 0, 0, 0, 0, 0, 0,
                                   time.perf_counter() - started, switched=False)
            name = f"{self.cfg.collection}{SNAPSHOT_INFIX}{time.strftime('%Y%m%d%H%M%S')}{uuid.uuid4().hex[:6]}"
            staging = self._collection(name, create=True, metadata=collection_metadata(
                self.encoder.identity, self.encoder.dimension, catalog, state="staging"))
            self._fill(staging, catalog, live, the_plan, progress)
            if staging.count() != len(catalog):
                raise StoreError(f"staging index {name} has {staging.count()} items, expected {len(catalog)}; "
                                 "the previous index is still live")
            self._switch(name)
            self._facts_cache = {name: FactsTable.from_catalog(catalog)}  # exactly what was just written
            self._drop_stale_snapshots(keep=name)
        return IndexReport(name, len(catalog), len(the_plan.to_embed), len(the_plan.to_copy), len(the_plan.new),
                           len(the_plan.changed), len(the_plan.metadata_only), len(the_plan.removed),
                           time.perf_counter() - started, switched=True, reason=the_plan.full_rebuild_reason or "")

    def _fill(self, staging, catalog: Catalog, live, the_plan: IndexPlan, progress: bool) -> None:
        from tqdm.auto import tqdm

        batch = min(self.client.get_max_batch_size(), 4096)

        def add(ids: list[str], vectors) -> None:
            items = [catalog[i] for i in ids]
            staging.add(ids=ids, embeddings=np.asarray(vectors, dtype=np.float32),
                        documents=[it.document() for it in items],
                        metadatas=[item_metadata(it) for it in items])

        bar = tqdm(total=len(catalog), desc=f"indexing {catalog.name}", unit="item", disable=not progress)
        try:
            for start in range(0, len(the_plan.to_copy), batch):
                ids = the_plan.to_copy[start:start + batch]
                got = live.get(ids=ids, include=["embeddings"])
                by_id = dict(zip(got["ids"], got["embeddings"]))
                add(ids, [by_id[i] for i in ids])
                bar.update(len(ids))
            to_embed = the_plan.to_embed
            for start in range(0, len(to_embed), EMBED_BATCH):
                ids = to_embed[start:start + EMBED_BATCH]
                add(ids, self.encoder.encode([catalog[i].document() for i in ids]))
                bar.update(len(ids))
        finally:
            bar.close()

    def _switch(self, name: str) -> None:
        from chromadb.errors import NotFoundError

        meta = {"active": name, "switched": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        try:
            pointer = self.client.get_collection(self.pointer_name, embedding_function=self._ef)
        except NotFoundError:
            self.client.create_collection(self.pointer_name, metadata=meta, embedding_function=self._ef)
            return
        pointer.modify(metadata=meta)  # the atomic switch: one metadata row update

    def _snapshots(self) -> Iterable[str]:
        prefix = self.cfg.collection + SNAPSHOT_INFIX
        for col in self.client.list_collections():
            name = col if isinstance(col, str) else col.name
            if name.startswith(prefix):
                yield name

    def _drop_stale_snapshots(self, keep: str) -> None:
        for name in list(self._snapshots()):
            if name != keep:
                self.client.delete_collection(name)

    def drop(self) -> None:
        """Delete the whole index (pointer and snapshots) of this collection name."""
        from chromadb.errors import NotFoundError

        with self._build_lock():
            for name in [*self._snapshots(), self.pointer_name]:
                try:
                    self.client.delete_collection(name)
                except NotFoundError:
                    pass
        self._live = None
