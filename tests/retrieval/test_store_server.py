"""The same ItemStore code against a real `chroma run` server that this test starts on 127.0.0.1."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from retrieval.constraints import Constraints
from retrieval.catalog.schema import Catalog
from retrieval.config import StoreConfig
from retrieval.embeddings import SentenceEncoder
from retrieval.store import ItemStore, StoreError

pytestmark = pytest.mark.server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    chroma = Path(sys.executable).with_name("chroma")
    assert chroma.is_file(), f"chroma CLI missing next to {sys.executable}"
    port = free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    log = (data / "server.log").open("wb")
    proc = subprocess.Popen([str(chroma), "run", "--path", str(data / "db"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, f"chroma server exited: {(data / 'server.log').read_text()[-2000:]}"
            assert time.monotonic() < deadline, "chroma server did not answer its heartbeat within 60 s"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder()


@pytest.fixture(scope="module")
def catalog(ml100k) -> Catalog:
    return Catalog(ml100k.catalog.items[:40], name="ml-slice")


def test_server_store_indexes_searches_and_updates_like_the_embedded_one(chroma_url, encoder, catalog, tmp_path):
    remote = ItemStore(StoreConfig(collection="srv", chroma_url=chroma_url), encoder, tmp_path / "remote-home")
    local = ItemStore(StoreConfig(collection="srv"), encoder, tmp_path / "local-home")
    assert remote.location == chroma_url
    for store in (remote, local):
        assert store.index(catalog, progress=False).embedded == len(catalog)
    assert not (tmp_path / "remote-home" / "chroma" / "chroma.sqlite3").exists()  # data went to the server
    c = Constraints(include_genres=frozenset({"Drama"}), exclude_genres=frozenset({"Romance"}), year_min=1994)
    for query in ("a prison escape story", "a funny film for children"):
        got_remote, got_local = remote.search(query, 5), local.search(query, 5)
        assert [i for i, _ in got_remote] == [i for i, _ in got_local]
        filtered = remote.search(query, 5, c)
        assert filtered and all(c.allows(catalog[i]) for i, _ in filtered)
        assert [i for i, _ in filtered] == [i for i, _ in local.search(query, 5, c)]

    items = list(catalog)
    items[0] = items[0].with_(description="Space pirates rob an orbital casino.")
    report = remote.index(Catalog(items, name=catalog.name), progress=False)
    assert (report.embedded, report.copied) == (1, len(catalog) - 1)
    assert remote.search("pirates robbing a casino in orbit", 1)[0][0] == items[0].item_id
    # a second client of the same server sees the switched index (the pointer lives in the server)
    other = ItemStore(StoreConfig(collection="srv", chroma_url=chroma_url), encoder, tmp_path / "elsewhere")
    assert other.status().collection == report.collection and other.count() == len(catalog)


def test_unreachable_server_gives_an_actionable_error(encoder, tmp_path):
    store = ItemStore(StoreConfig(chroma_url=f"http://127.0.0.1:{free_port()}"), encoder, tmp_path)
    with pytest.raises(StoreError, match=r"cannot reach the Chroma server .*chroma run --path PATH --port PORT"):
        store.count()
