"""A damaged search index is found before it serves, repaired without deleting anything, never silently wrong.

Every test works on a copy of one real full index (MovieLens-100k, 1682 items: enough for Chroma to persist
its HNSW files, which small collections never get) and damages one file of it the ways disks and people
do: truncated, emptied, deleted, overwritten with garbage.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from retrieval.config import Settings, StoreConfig
from retrieval.embeddings import SentenceEncoder
from retrieval.service import RetrievalService
from retrieval.store import ItemStore
from retrieval.store_check import (HNSW_FILES, MISSED_SHARE, chroma_file_damage, orphan_segment_dirs, probe_items,
                                    segment_dir)

QUERIES = ("space adventure", "a funny family film", "gritty crime thriller")


@pytest.fixture(scope="session")
def good_home(shared_home):
    """The session's shared home with its full index built (the agent tests use the same one)."""
    RetrievalService(Settings.load(home=shared_home)).ensure_index(progress=False)
    return shared_home


@pytest.fixture(scope="session")
def good_answers(good_home, ml100k):
    store = ItemStore(StoreConfig(), SentenceEncoder(), good_home)
    return {q: store.search(q, 10) for q in QUERIES}


@pytest.fixture
def home(good_home, tmp_path):
    """A copy of the good index in a fresh home."""
    shutil.copytree(good_home / "chroma", tmp_path / "chroma", ignore=shutil.ignore_patterns("*.lock"))
    return tmp_path


def live_folder(home: Path) -> Path:
    from retrieval.store_check import live_segment

    name, segment, persisted = live_segment(home / "chroma", "marquee-items")
    assert persisted, "the full index must have persisted HNSW files"
    return home / "chroma" / segment


def damage_file(path: Path, how: str) -> None:
    size = path.stat().st_size
    if how == "truncated":
        os.truncate(path, size // 2)
    elif how == "empty":
        os.truncate(path, 0)
    elif how == "deleted":
        path.unlink()
    elif how == "garbled":  # overwrite a stretch in the middle; the size stays the same
        with open(path, "r+b") as fh:
            fh.seek(size // 3)
            fh.write(np.random.default_rng(0).bytes(max(1, min(4096, size // 3))))
    else:
        raise ValueError(how)


def new_service(home: Path) -> RetrievalService:
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()  # as a freshly started process: no Chroma state cached
    return RetrievalService(Settings.load(home=home))


# ------------------------------------------------------------------------------------- detection


@pytest.mark.parametrize("how", ["truncated", "empty", "deleted", "garbled"])
@pytest.mark.parametrize("name", HNSW_FILES)
def test_every_damaged_hnsw_file_is_found_before_chroma_loads_it(home, name, how):
    folder = live_folder(home)
    damage_file(folder / name, how)
    found, _ = chroma_file_damage(home / "chroma", "marquee-items")
    assert len(found) == 1 and found[0].paths == (folder,) and not found[0].whole_store
    assert name in found[0].what and folder.name in found[0].what


def test_a_deleted_index_folder_is_found(home):
    folder = live_folder(home)
    shutil.rmtree(folder)
    found, _ = chroma_file_damage(home / "chroma", "marquee-items")
    assert [d.what for d in found] == [f"snapshot {_live_name(home)}: its index folder {folder.name}/ is missing"]


@pytest.mark.parametrize("how", ["truncated", "empty", "deleted", "garbled"])
def test_a_damaged_chroma_database_is_found(home, how):
    db = home / "chroma" / "chroma.sqlite3"
    if how == "garbled":  # garbage inside the b-tree pages (the header stays valid)
        with open(db, "r+b") as fh:
            fh.seek(db.stat().st_size // 3)
            fh.write(np.random.default_rng(1).bytes(8192))
    else:
        damage_file(db, how)
    found, _ = chroma_file_damage(home / "chroma", "marquee-items")
    assert len(found) == 1 and found[0].whole_store and found[0].paths == (home / "chroma",)
    assert "chroma.sqlite3" in found[0].what


def test_an_intact_index_passes_every_check(home, ml100k):
    health = new_service(home).store.verify(ml100k.catalog, thorough=True)
    assert health.ok, health.summary()
    assert health.passed[:3] == ["chroma.sqlite3 quick_check", "HNSW files", "25 probe searches"]
    # HNSW search is approximate and its graph build is multi-threaded: a vector or two may miss their own item
    # on one build and not on the next (retrieval/store_check.py tolerates up to MISSED_SHARE of them)
    findable = re.fullmatch(r"all 1682 vectors findable|(\d+) of 1682 vectors findable \(approximate search\)",
                            health.passed[3])
    assert findable and (findable.group(1) is None or int(findable.group(1)) >= 1682 * (1 - MISSED_SHARE))
    assert health.leftovers == []


def test_vectors_swapped_between_items_fail_the_probe_searches(home, ml100k):
    """Structurally valid, semantically wrong: two items' labels swapped in the graph. Only asking the index
    questions with known answers can find this; the cheap start-up check does."""
    service = new_service(home)
    first = probe_items(ml100k.catalog.item_ids, 5)[0]  # the start-up check probes this item
    other = "50"
    _swap_labels(live_folder(home), service.encoder, ml100k.catalog, first, other)
    assert chroma_file_damage(home / "chroma", "marquee-items")[0] == []  # the files look fine
    health = service.store.verify(ml100k.catalog)
    assert not health.ok and "probe searches failed" in health.summary()
    assert ml100k.catalog[first].label in health.summary()
    assert health.damage[0].paths == (live_folder(home),)


def _swap_labels(folder: Path, encoder, catalog, a: str, b: str) -> None:
    import struct

    from retrieval.store_check import HEADER

    (_v, _o, _max, count, per_element, label_offset, offset_data, *_rest) = HEADER.unpack(
        (folder / "header.bin").read_bytes())
    dim = (label_offset - offset_data) // 4
    raw = np.fromfile(folder / "data_level0.bin", dtype=np.uint8, count=count * per_element).reshape(count, -1)
    vectors = raw[:, offset_data:label_offset].copy().view(np.float32)
    rows = [int(np.argmax(vectors @ encoder.encode([catalog[i].document()])[0])) for i in (a, b)]
    assert vectors.shape[1] == dim and rows[0] != rows[1]
    with open(folder / "data_level0.bin", "r+b") as fh:
        labels = []
        for row in rows:
            fh.seek(row * per_element + label_offset)
            labels.append(fh.read(8))
        for row, label in zip(rows, reversed(labels)):
            fh.seek(row * per_element + label_offset)
            fh.write(label)
    assert struct.unpack("<Q", labels[0]) != struct.unpack("<Q", labels[1])


def _live_name(home: Path) -> str:
    from retrieval.store_check import live_segment

    return live_segment(home / "chroma", "marquee-items")[0]


# ------------------------------------------------------------------------------------- repair


def test_serving_start_rebuilds_a_damaged_index_and_answers_as_before(home, ml100k, good_answers, caplog):
    """Finding: a truncated data_level0.bin made `search` return unrelated films. Now the start-up check
    finds it, the index is rebuilt into a new snapshot and the answers are the good index's answers."""
    folder = live_folder(home)
    damage_file(folder / "data_level0.bin", "truncated")
    truncated = (folder / "data_level0.bin").stat().st_size
    service = new_service(home)
    with caplog.at_level("WARNING"):
        report = service.ensure_index(progress=False)
    assert report.switched and report.embedded == 1682 and "previous index damaged" in report.reason
    assert "data_level0.bin" in caplog.text and "embedding all 1682 items" in caplog.text
    moved = [Path(p) for p in report.quarantined]
    assert len(moved) == 1 and moved[0] == home / "quarantine" / moved[0].parts[-3] / "chroma" / folder.name
    assert not folder.exists() and (moved[0] / "data_level0.bin").stat().st_size == truncated  # aside, as it was
    for query, hits in good_answers.items():
        got = service.store.search(query, 10)
        assert [i for i, _ in got] == [i for i, _ in hits]
        assert np.allclose([s for _, s in got], [s for _, s in hits], atol=1e-3)
    health = service.store.verify(ml100k.catalog, thorough=True)
    assert health.ok, health.summary()
    assert orphan_segment_dirs(home / "chroma") == []


def test_a_garbled_graph_is_rebuilt_instead_of_crashing_chroma(home, ml100k, good_answers):
    """Garbage in the graph's links makes Chroma's native reader crash with a segmentation fault on load;
    the file check runs first, so the damaged snapshot is never opened."""
    damage_file(live_folder(home) / "data_level0.bin", "garbled")
    service = new_service(home)
    report = service.ensure_index(progress=False)
    assert report.switched and "data_level0.bin is damaged" in report.reason
    assert [i for i, _ in service.store.search(QUERIES[0], 10)] == [i for i, _ in good_answers[QUERIES[0]]]


def test_index_rebuild_works_on_a_half_truncated_chroma_database(home, ml100k, good_answers):
    """Finding: `marquee index --rebuild` failed when chroma.sqlite3 was half-truncated. Now the whole Chroma
    folder is moved aside and the build starts clean."""
    from agent.cli import build

    db = home / "chroma" / "chroma.sqlite3"
    damage_file(db, "truncated")
    damaged_size = db.stat().st_size
    env = {"MARQUEE_HOME": str(home), "MARQUEE_CONFIG": str(home / "absent.toml"), "MARQUEE_CHROMA_URL": "",
           "MARQUEE_STORE__CHROMA_URL": ""}
    new_service(home)  # clears Chroma's per-process cache, as a new process
    result = CliRunner().invoke(build(), ["index", "--rebuild", "-q"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "embedded 1682" in result.stdout and "damaged files moved to" in result.stdout
    quarantined = list((home / "quarantine").glob("*/chroma/chroma.sqlite3"))
    assert len(quarantined) == 1 and quarantined[0].stat().st_size == damaged_size
    store = new_service(home).store
    assert store.verify(ml100k.catalog).ok
    assert [i for i, _ in store.search(QUERIES[1], 10)] == [i for i, _ in good_answers[QUERIES[1]]]


# ------------------------------------------------------------------------------------- leftovers


def test_builds_remove_leftover_folders_but_never_the_live_one(home, ml100k):
    """Chroma's delete_collection leaves a dropped snapshot's folder on disk; the next build removes every
    folder no collection owns (dropped snapshots, crashed builds) and keeps the live one."""
    live = live_folder(home)
    leftover = home / "chroma" / "0b5e7c1e-0000-4000-8000-000000000001"
    (leftover).mkdir()
    (leftover / "data_level0.bin").write_bytes(b"old")
    unrelated = home / "chroma" / "notes"  # not a segment folder: never touched
    unrelated.mkdir()
    service = new_service(home)
    assert service.store.verify(ml100k.catalog).leftovers == [leftover]
    report = service.store.index(ml100k.catalog, progress=False)
    assert not report.switched and report.leftovers_removed == 1
    assert not leftover.exists() and unrelated.is_dir() and live.is_dir()
    assert (live / "data_level0.bin").stat().st_size > 0 and service.store.verify(ml100k.catalog).ok


@pytest.mark.slow
def test_a_finished_rebuild_removes_the_old_snapshot_folder(home, ml100k):
    old = live_folder(home)
    service = new_service(home)
    report = service.store.index(ml100k.catalog, progress=False, rebuild=True)
    assert report.switched and report.leftovers_removed == 1 and report.quarantined == []
    assert not old.exists() and live_folder(home) != old
    assert orphan_segment_dirs(home / "chroma") == []
    assert [p.name for p in (home / "chroma").iterdir() if p.is_dir()] == [live_folder(home).name]
    assert segment_dir(home / "chroma", report.collection) == live_folder(home)


def test_an_index_still_damaged_after_the_rebuild_stops_the_start_with_the_fix(home, ml100k, monkeypatch):
    """If the check keeps failing (say, the disk keeps corrupting what is written), serving does not start on
    it: the error names the damage and the fix."""
    from retrieval.indexing import IndexDamagedError
    from retrieval.store_check import Damage, IndexHealth

    def always_damaged(self, catalog=None, thorough=False):
        return IndexHealth(self.location, damage=[Damage("probe searches failed ('Toy Story (1995)' ...)")])

    monkeypatch.setattr(ItemStore, "verify", always_damaged)
    service = new_service(home)
    with pytest.raises(IndexDamagedError, match=r"still damaged after a rebuild .*Fix: marquee doctor --repair"):
        service.ensure_index(progress=False)
