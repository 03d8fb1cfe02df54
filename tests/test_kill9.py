"""`kill -9` anywhere loses nothing: a real SIGKILL of `marquee serve` mid-turn and of `enrich` mid-run.

(`marquee index` killed mid-build: tests/retrieval/test_store_atomicity.py.)
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import types
import uuid
from pathlib import Path

import pytest

from agent.llm.describe import DescriptionWriter
from retrieval.catalog.descriptions import read_descriptions

# ------------------------------------------------------------------------------------- enrich

ENRICH_CHILD = textwrap.dedent("""
    import os, sys, time, types
    from pathlib import Path
    from agent.llm.describe import DescriptionWriter
    from retrieval.catalog.movielens import load_movielens_100k

    path, mode = Path(sys.argv[1]), sys.argv[2]

    class Stub(DescriptionWriter):  # the LLM is not what is tested here: enrich's persistence is
        calls = 0
        def describe(self, items):
            Stub.calls += 1
            if mode == "between batches" and Stub.calls == 3:  # batches 1-2 are on disk, 3 never will be
                print("MID", flush=True)
                time.sleep(300)
            return [(it, f"A quiet story about {it.title}.", ()) for it in items]

    replace = os.replace
    def stalling_replace(src, dst):
        if mode == "mid-append" and Path(dst).name == "descriptions.jsonl" and Stub.calls == 3:
            print("MID", flush=True)  # batch 3 is in the temporary file, not yet swapped in
            time.sleep(300)
        return replace(src, dst)
    os.replace = stalling_replace

    catalog = load_movielens_100k().catalog
    Stub(types.SimpleNamespace(model_id="stub"), catalog).enrich(path, limit=40, batch_size=4, progress=False)
    print("FINISHED", flush=True)
""")


class QuietWriter(DescriptionWriter):
    def describe(self, items):
        return [(it, f"A quiet story about {it.title}.", ()) for it in items]


def sigkill_when_ready(args: list[str], env: dict | None = None) -> None:
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = child.stdout.readline().strip()
        assert line == "MID", f"child did not reach the kill point: {line!r} {child.stderr.read()[-3000:]}"
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


@pytest.mark.parametrize("mode", ["between batches", "mid-append"])
def test_enrich_killed_mid_run_keeps_whole_rows_and_resumes(tmp_path, ml100k, mode):
    path = tmp_path / "catalogs" / ml100k.catalog.name / "descriptions.jsonl"
    sigkill_when_ready([sys.executable, "-c", ENRICH_CHILD, str(path), mode])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 8 and all(json.loads(line)["description"].startswith("A quiet story") for line in lines)
    leftovers = list(path.parent.glob(".descriptions.jsonl.*.tmp"))
    assert len(leftovers) == (1 if mode == "mid-append" else 0)  # the killed writer's temporary file

    report = QuietWriter(types.SimpleNamespace(model_id="stub"), ml100k.catalog).enrich(path, limit=8,
                                                                                         progress=False)
    assert report.written == 8 and report.skipped == 8  # resumed after the 8 rows on disk
    stored = read_descriptions(path)
    assert list(stored) == ml100k.catalog.item_ids[:16]  # no duplicates, no gap
    assert len(path.read_text(encoding="utf-8").splitlines()) == 16
    assert not list(path.parent.glob(".descriptions.jsonl.*.tmp"))  # the next append removed the leftover


# ------------------------------------------------------------------------------------- serve


@pytest.fixture
def serve_home(shared_home, tmp_path):
    """A fresh home with a copy of the built index and the converted model (no rebuild, no conversion)."""
    import shutil

    from retrieval.config import Settings
    from retrieval.service import RetrievalService

    RetrievalService(Settings.load(home=shared_home)).ensure_index(progress=False)
    home = tmp_path / "home"
    shutil.copytree(shared_home / "chroma", home / "chroma", ignore=shutil.ignore_patterns("*.lock"))
    from agent.llm.loading import convert_embedded

    convert_embedded(shared_home)
    (home / "models").mkdir()
    os.symlink(shared_home / "models" / "smollm2-135m", home / "models" / "smollm2-135m")
    return home


@pytest.mark.slow
def test_serve_killed_mid_turn_keeps_every_committed_turn_and_serves_again(serve_home):
    """LLM explanations make a turn take seconds after its first line has streamed out; the server is killed
    right then. The committed first turn survives, the interrupted one leaves no trace, a restart serves."""
    from gradio_client import Client

    from benchmarks.web_driver import ServerProcess

    env = {"MARQUEE_AGENT__RERANK": "false", "MARQUEE_AGENT__EXPLAIN": "llm", "MARQUEE_CONFIG": "",
           "MARQUEE_CHROMA_URL": "", "MARQUEE_STORE__CHROMA_URL": ""}
    sid = f"kill-{uuid.uuid4().hex[:8]}"
    server = ServerProcess(serve_home, env=env, ready_timeout=1200).start()
    try:
        client = Client(server.url, verbose=False, download_files=False)
        first = client.predict("westerns", sid, api_name="/chat")
        assert first["items"] and all("Western" in i["genres"] for i in first["items"])
        job = client.submit("no westerns, comedies instead", sid, api_name="/chat_stream")
        for update in job:
            if update["text"] and not update["items"]:  # the header is out, explanations are being written
                server.proc.send_signal(signal.SIGKILL)
                break
        assert server.proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        server.stop()

    db = serve_home / "marquee.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA quick_check").fetchone() == ("ok",)
        stored = f"api:{sid}"  # API sessions have their own namespace (agent/web/api.py)
        roles = [r[0] for r in conn.execute("SELECT role FROM messages WHERE session_id = ? ORDER BY id", (stored,))]
        state = json.loads(conn.execute("SELECT state FROM sessions WHERE session_id = ?", (stored,)).fetchone()[0])
    conn.close()
    assert roles == ["user", "assistant"] and state["genres"] == ["Western"] and state["turns"] == 1

    with ServerProcess(serve_home, env=env, ready_timeout=1200) as again:
        client = Client(again.url, verbose=False, download_files=False)
        assert client.predict(sid, api_name="/preferences")["genres"] == ["Western"]
        more = client.predict("more please", sid, api_name="/chat")
        shown = {i["item_id"] for i in first["items"]}
        assert more["items"] and all("Western" in i["genres"] for i in more["items"])
        assert not shown & {i["item_id"] for i in more["items"]}  # the first turn's picks are remembered
