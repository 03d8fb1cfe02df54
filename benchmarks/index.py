"""Index throughput with the real MiniLM on MovieLens-100k (`marquee bench index [--quick]`).

Measures a full build from nothing into a fresh embedded Chroma (embedding + writes + pointer switch),
the encoder alone, a no-op incremental run and a one-item change. Model loading (and the one-off
bf16-vs-fp32 agreement check) is timed separately and not counted in the throughput.
--quick indexes the first 500 items instead of all 1,682.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from benchmarks.harness import peak_rss_mb

TARGETS = {"build.items_per_s": "≥ 200 (2-core CPU)"}


def run(quick: bool = False) -> dict:
    from retrieval.catalog.movielens import load_movielens_100k
    from retrieval.catalog.schema import Catalog
    from retrieval.config import StoreConfig
    from retrieval.embeddings import SentenceEncoder
    from retrieval.store import ItemStore

    catalog = load_movielens_100k().catalog
    if quick:
        catalog = Catalog(catalog.items[:500], name=catalog.name)
    docs = [it.document() for it in catalog]

    load_avg = os.getloadavg()[0]  # the machine may be shared: say how busy it was
    started = time.perf_counter()
    encoder = SentenceEncoder()
    encoder.encode(["warm-up"])  # loads the model and runs the bf16 agreement check
    load_s = time.perf_counter() - started

    t0 = time.perf_counter()
    encoder.encode(docs)
    encode_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory(prefix="marquee-bench-index-") as home:
        store = ItemStore(StoreConfig(collection="bench"), encoder, Path(home))
        cpu0 = time.process_time()
        report = store.index(catalog, progress=False)
        build_cpu_s = time.process_time() - cpu0
        noop = store.index(catalog, progress=False)
        items = list(catalog)
        items[0] = items[0].with_(description="An edited description for the benchmark.")
        one = store.index(Catalog(items, name=catalog.name), progress=False)

    figures = {
        "items": len(catalog),
        "variant": "quick (first 500 items)" if quick else "full ML-100k",
        "encoder": {"model": encoder.cfg.model, "dtype": encoder.dtype, "batch_size": encoder.cfg.batch_size,
                    "load_s": round(load_s, 2)},
        "encode_only": {"seconds": round(encode_s, 2), "items_per_s": round(len(docs) / encode_s, 1)},
        "build": {"seconds": round(report.seconds, 2), "items_per_s": round(len(catalog) / report.seconds, 1),
                  "cpu_seconds": round(build_cpu_s, 2)},
        "incremental_noop_s": round(noop.seconds, 3),
        "incremental_one_changed": {"seconds": round(one.seconds, 2), "embedded": one.embedded,
                                    "reused": one.copied},
        "peak_rss_mb": peak_rss_mb(),
        "load_avg_1m_at_start": round(load_avg, 2),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
    }
    return figures


if __name__ == "__main__":  # python -m benchmarks.index [--quick] [--out DIR]
    from benchmarks.cli import main

    main("index")
