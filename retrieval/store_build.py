"""How `ItemStore` builds its index: snapshot collections, a pointer switch, incremental by content hash.

See the module doc of `retrieval.store` for why this is atomic. This mixin holds the write side;
`ItemStore` (read side) provides `client`, `cfg`, `encoder`, `home`, `chroma_dir`, `pointer_name`,
`_collection`, `_live_snapshot`, `_close_client` and the `_facts_cache`.

A build first checks what it is about to reuse (`retrieval.store_check`): a damaged snapshot is never
read, its vectors are never copied; every item is embedded again, and once the new snapshot is live the
damaged files are moved to `<home>/quarantine/`. When chroma.sqlite3 itself is unusable the whole Chroma
folder is moved there first and the build starts from an empty store.
"""
from __future__ import annotations

import fcntl
import logging
import shutil
import time
import uuid
from collections.abc import Iterable, Sequence
from contextlib import contextmanager

import numpy as np

from retrieval.catalog.schema import Catalog
from retrieval.constraints import FactsTable
from retrieval.indexing import (IndexDamagedError, IndexPlan, IndexReport, StoreError, collection_metadata, facts_of,
                                item_metadata, plan)
from retrieval.integrity import quarantine
from retrieval.store_check import (PROBES_CHEAP, Damage, chroma_file_damage, orphan_segment_dirs, probe_items,
                                   probe_problems, segment_dir)

log = logging.getLogger(__name__)

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
        # In home, not in the Chroma folder: a repair may move that folder away while holding the lock.
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / f".{self.cfg.collection}.index.lock", "w") as fh:
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

    def index(self, catalog: Catalog, progress: bool = True, rebuild: bool = False,
              damage: Sequence[Damage] = ()) -> IndexReport:
        """Bring the index in line with `catalog`: embed only new/changed items, switch atomically.

        A damaged index (found here, or passed in as `damage` by a thorough check) is rebuilt from the
        catalog; its files are moved to `<home>/quarantine/`.
        """
        started = time.perf_counter()
        with self._build_lock():
            damage, moved = list(dict.fromkeys([*damage, *self._file_damage()])), []
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            if not any(d.whole_store for d in damage):
                try:
                    self.client  # noqa: B018 - opening the store is the last check of its database
                except IndexDamagedError as exc:
                    damage.append(Damage(str(exc).split(". Fix:")[0], (self.chroma_dir,), whole_store=True))
            if any(d.whole_store for d in damage):  # chroma.sqlite3 unusable: start from an empty store
                moved += self._move_store_aside(stamp)
            live, the_plan, damage = self._plan_checked(catalog, rebuild, damage)
            if damage:
                log.warning("search index damaged (%s): embedding all %d items into a new snapshot",
                            "; ".join(d.what for d in damage), len(catalog))
            elif live is not None and the_plan.up_to_date:
                removed = self._drop_stale_snapshots(keep=live.name)
                return IndexReport(live.name, live.count(), 0, 0, 0, 0, 0, 0,
                                   time.perf_counter() - started, switched=False, leftovers_removed=removed)
            name = f"{self.cfg.collection}{SNAPSHOT_INFIX}{time.strftime('%Y%m%d%H%M%S')}{uuid.uuid4().hex[:6]}"
            staging = self._collection(name, create=True, metadata=collection_metadata(
                self.encoder.identity, self.encoder.dimension, catalog, state="staging"))
            self._fill(staging, catalog, live, the_plan, progress)
            if staging.count() != len(catalog):
                raise StoreError(f"staging index {name} has {staging.count()} items, expected {len(catalog)}; "
                                 "the previous index is still live")
            self._switch(name)
            self._facts_cache = {name: FactsTable.from_catalog(catalog)}  # exactly what was just written
            # the damaged snapshot is no longer live: keep its files for inspection, out of Chroma's folder
            moved += quarantine(self.home, [p for d in damage if not d.whole_store for p in d.paths], stamp)
            removed = self._drop_stale_snapshots(keep=name)
        return IndexReport(name, len(catalog), len(the_plan.to_embed), len(the_plan.to_copy), len(the_plan.new),
                           len(the_plan.changed), len(the_plan.metadata_only), len(the_plan.removed),
                           time.perf_counter() - started, switched=True, reason=the_plan.full_rebuild_reason or "",
                           quarantined=[str(p) for p in moved], leftovers_removed=removed)

    def _file_damage(self) -> list[Damage]:
        return [] if self.chroma_dir is None else chroma_file_damage(self.chroma_dir, self.cfg.collection)[0]

    def _move_store_aside(self, stamp: str) -> list:
        """Quarantine the whole embedded Chroma folder (its database is unusable) and reconnect to an empty one."""
        self._close_client()
        return quarantine(self.home, [self.chroma_dir], stamp)

    def _plan_checked(self, catalog: Catalog, rebuild: bool, damage: list[Damage]):
        """(live collection or None, plan, damage): a full-rebuild plan that reads nothing from the live
        snapshot when it is damaged, or when the vectors the plan would reuse fail the probe searches."""
        from chromadb.errors import NotFoundError

        damage = list(damage)
        live = None
        if not damage:  # a damaged snapshot is not even opened (loading a garbled graph crashes Chroma)
            try:
                snapshot = self._live_snapshot(required=False)
                live = snapshot.collection if snapshot else None
            except NotFoundError as exc:
                damage.append(Damage(f"the index pointer names a snapshot that does not exist ({exc})"))
        if not damage:
            the_plan = self._plan(catalog, live, rebuild)
            if live is not None and the_plan.to_copy:  # vectors are about to be reused: are they right?
                problems = probe_problems(live, self.encoder, catalog, probe_items(the_plan.to_copy, PROBES_CHEAP))
                if problems:
                    folder = segment_dir(self.chroma_dir, live.name) if self.chroma_dir is not None else None
                    damage.append(Damage(f"snapshot {live.name}: {len(problems)} probe searches failed "
                                         f"({problems[0]})", (folder,) if folder is not None else ()))
        if damage:
            reason = "previous index damaged: " + "; ".join(d.what for d in damage)
            return None, plan(catalog, None, reason), damage
        return live, the_plan, damage

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

    def _drop_stale_snapshots(self, keep: str) -> int:
        """Drop every snapshot but `keep` (older ones, staging leftovers of crashed builds), then the segment
        folders no collection owns any more; returns how many folders were removed. Never the live one."""
        for name in list(self._snapshots()):
            if name != keep:
                self.client.delete_collection(name)
        return self._remove_leftover_folders()

    def _remove_leftover_folders(self) -> int:
        if self.chroma_dir is None:
            return 0
        leftovers = orphan_segment_dirs(self.chroma_dir)  # folders whose segment row is gone (build lock held)
        for folder in leftovers:
            shutil.rmtree(folder, ignore_errors=True)
        return len(leftovers)

    def drop(self) -> None:
        """Delete the whole index (pointer and snapshots) of this collection name."""
        from chromadb.errors import NotFoundError

        with self._build_lock():
            for name in [*self._snapshots(), self.pointer_name]:
                try:
                    self.client.delete_collection(name)
                except NotFoundError:
                    pass
            self._remove_leftover_folders()
        self._live = None
