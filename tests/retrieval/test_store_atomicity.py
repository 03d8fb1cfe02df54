"""Index builds are atomic: SIGKILL a real build half-way, the previous index keeps answering."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from retrieval.catalog.schema import Catalog
from retrieval.config import StoreConfig
from retrieval.embeddings import SentenceEncoder
from retrieval.store import ItemStore
from retrieval.store_check import orphan_segment_dirs

N_ITEMS = 60
QUERIES = ("space adventure with aliens", "a funny family film", "gritty crime thriller")

# The child rebuilds the index for a catalog whose every description changed, in batches of 16. After the
# first batch is in the staging collection it announces itself and stalls, so the parent kills it exactly
# mid-build (a real SIGKILL of a real Chroma writer, not a simulated exception).
CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import retrieval.store as store_module
    import retrieval.store_build
    from retrieval.catalog.movielens import load_movielens_100k
    from retrieval.catalog.schema import Catalog
    from retrieval.config import StoreConfig
    from retrieval.embeddings import SentenceEncoder

    retrieval.store_build.EMBED_BATCH = 16

    class StallingEncoder(SentenceEncoder):
        calls = 0
        def encode(self, texts):
            StallingEncoder.calls += 1
            if StallingEncoder.calls == 2:  # batch 1 was added to staging; batch 2 never will be
                print("MID-BUILD", flush=True)
                time.sleep(300)
            return super().encode(texts)

    items = load_movielens_100k().catalog.items[:int(sys.argv[2])]
    catalog = Catalog([it.with_(description="Rewritten: " + it.title) for it in items], name="ml-slice")
    store = store_module.ItemStore(StoreConfig(collection="atomic"), StallingEncoder(), Path(sys.argv[1]))
    store.index(catalog, progress=False)
    print("FINISHED", flush=True)
""")


def fresh_store(home, encoder) -> ItemStore:
    """A store with a brand-new Chroma client, as a freshly started process would have."""
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()
    return ItemStore(StoreConfig(collection="atomic"), encoder, home)


@pytest.mark.slow
def test_sigkill_mid_build_leaves_the_previous_index_answering(tmp_path, ml100k):
    encoder = SentenceEncoder()
    catalog = Catalog(ml100k.catalog.items[:N_ITEMS], name="ml-slice")
    store = ItemStore(StoreConfig(collection="atomic"), encoder, tmp_path)
    store.index(catalog, progress=False)
    live = store.status().collection
    before = {q: store.search(q, 5) for q in QUERIES}

    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(N_ITEMS)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline().strip()
        assert line == "MID-BUILD", f"child did not reach mid-build: {line!r} {child.stderr.read()[-3000:]}"
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    after_crash = fresh_store(tmp_path, encoder)
    snapshots = {c.name: c.count() for c in after_crash.client.list_collections() if c.name.startswith("atomic.v")}
    assert len(snapshots) == 2 and snapshots[live] == N_ITEMS  # the killed build left a partial staging snapshot
    assert sorted(snapshots.values()) == [16, N_ITEMS]
    status = after_crash.status(catalog)
    assert status.collection == live and status.count == N_ITEMS and not status.stale
    for query, hits in before.items():
        got = after_crash.search(query, 5)
        assert [i for i, _ in got] == [i for i, _ in hits]
        assert [round(s, 4) for _, s in got] == [round(s, 4) for _, s in hits]

    # the next build finishes the job and clears the orphan
    rewritten = Catalog([it.with_(description="Rewritten: " + it.title) for it in catalog], name="ml-slice")
    report = after_crash.index(rewritten, progress=False)
    assert report.embedded == N_ITEMS and after_crash.count() == N_ITEMS
    names = sorted(c.name for c in after_crash.client.list_collections() if c.name.startswith("atomic"))
    assert names == sorted([report.collection, "atomic.active"])
    assert orphan_segment_dirs(tmp_path / "chroma") == []  # no folder of the killed or the old snapshot remains
    assert after_crash.search_hits(catalog.at(0).title, 1)[0].document.endswith("Rewritten: " + catalog.at(0).title)
