"""Semantic query latency, p50/p95, with and without genre+year filters (`marquee bench query [--quick]`).

Two catalogs, both through the real `ItemStore.search` code path (pointer read, query embedding with the
real MiniLM, Chroma HNSW query with the `where` filter, hit verification):
  * ML-100k: the 1,682 real movies, documents embedded with MiniLM;
  * synthetic 100k: 100,000 generated items (random realistic titles, 1–3 genres, years 1920–2024).
    To keep the run short their DOCUMENT vectors are seeded random unit vectors (384-d) instead of
    MiniLM embeddings — HNSW work per query does not depend on where the vectors came from (random
    vectors are, if anything, harder) — while every QUERY is embedded with the real encoder.
--quick runs fewer queries (the 100k index is still built in full). Both indexes are kept in
<tmp>/marquee-bench-query between runs: thanks to incremental indexing a re-run reuses them.
"""
from __future__ import annotations

import itertools
import os
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from benchmarks.harness import peak_rss_mb, timings

K = 20
SYNTHETIC_ITEMS = 100_000
TARGETS = {"synthetic_100k.genre_year_filter.p95_ms": "≤ 50 (2-core CPU)"}
QUERIES = ["sci-fi and action films", "a funny romantic comedy", "dark psychological thriller",
           "animated film for kids", "courtroom drama", "space adventure with aliens", "gangster movie",
           "musical with great songs", "western with gunfights", "something light for a rainy sunday",
           "film noir detective story", "war film about friendship", "coming of age story",
           "scary haunted house", "heist gone wrong"]
ADJECTIVES = ["Silent", "Crimson", "Last", "Broken", "Hidden", "Electric", "Golden", "Midnight", "Lost", "Wild",
              "Frozen", "Secret", "Burning", "Distant", "Hollow", "Savage", "Gentle", "Iron", "Paper", "Velvet"]
NOUNS = ["River", "Protocol", "Summer", "Horizon", "Empire", "Garden", "Witness", "Harbor", "Signal", "Kingdom",
         "Orchard", "Frontier", "Mirror", "Letter", "Voyage", "Station", "Promise", "Machine", "Island", "Choir"]
PLACES = ["Paris", "Tokyo", "Nevada", "the Moon", "Berlin", "Lagos", "the Arctic", "Brooklyn", "Mars", "Lisbon"]


def genre_year_filters():
    from retrieval.constraints import Constraints

    return [Constraints(include_genres=frozenset({"Sci-Fi", "Action"}), year_min=1980, year_max=1999),
            Constraints(include_genres=frozenset({"Comedy"}), exclude_genres=frozenset({"Romance"}), year_max=1995),
            Constraints(include_genres=frozenset({"Crime", "Thriller"}), year_min=1970, year_max=1990),
            Constraints(include_genres=frozenset({"Drama"}), year_min=1990),
            Constraints(include_genres=frozenset({"Western"}), year_min=1950, year_max=1975)]


def synthetic_catalog(n: int, genres: list[str], seed: int = 7):
    """n items with random-but-realistic titles, 1–3 genres (Drama/Comedy most common) and years."""
    from retrieval.catalog.schema import Catalog, Item

    rng = np.random.default_rng(seed)
    weights = np.array([3.0 if g in ("Drama", "Comedy") else 1.0 for g in genres])
    weights /= weights.sum()
    items = []
    for i in range(n):
        title = f"{'The ' if rng.random() < 0.4 else ''}{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
        if rng.random() < 0.15:
            title += f" {rng.integers(2, 5)}"
        elif rng.random() < 0.2:
            title += f": Return to {rng.choice(PLACES)}"
        chosen = tuple(str(g) for g in rng.choice(genres, size=int(rng.integers(1, 4)), replace=False, p=weights))
        year = int(np.clip(rng.triangular(1920, 2010, 2024), 1920, 2024))
        items.append(Item(item_id=f"s{i}", title=title, year=year, genres=chosen,
                          description=f"A story set in {rng.choice(PLACES)}.", popularity=int(rng.zipf(2.0))))
    return Catalog(items, name="synthetic")


def synthetic_encoder():
    from retrieval.embeddings import SentenceEncoder

    class SyntheticDocumentEncoder(SentenceEncoder):
        """Real MiniLM for queries; seeded random unit vectors for synthetic documents (see module doc)."""

        def encode(self, texts):
            rng = np.random.default_rng(zlib.crc32("\x1f".join(texts).encode()))
            vectors = rng.standard_normal((len(texts), 384)).astype(np.float32)
            return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

        def encode_query(self, text):
            return SentenceEncoder.encode(self, [text])[0]

        @property
        def identity(self) -> str:
            return "synthetic-random-unit-vectors"

    return SyntheticDocumentEncoder()


def _label(c) -> str:
    genres = "|".join(sorted(c.include_genres)) + "".join(f" -{g}" for g in sorted(c.exclude_genres))
    return f"{genres} {c.year_min or ''}-{c.year_max or ''}"


def measure(store, catalog, repeat: int) -> dict:
    """Latency of k=20 searches without filters, and cycling through the genre+year filters."""
    texts = itertools.cycle(QUERIES)
    filters = genre_year_filters()
    filtered = zip(itertools.cycle(QUERIES), itertools.cycle(filters))
    per_filter: dict[str, list[float]] = {_label(c): [] for c in filters}
    hits_seen: list[int] = []

    def with_filter():
        query, constraints = next(filtered)
        t0 = time.perf_counter()
        hits_seen.append(len(store.search(query, K, constraints)))
        per_filter[_label(constraints)].append((time.perf_counter() - t0) * 1000)

    out = {"no_filter": timings(lambda: store.search(next(texts), K), repeat, warmup=3),
           "genre_year_filter": timings(with_filter, repeat, warmup=3)}
    out["genre_year_filter"]["mean_hits"] = round(float(np.mean(hits_seen)), 1)
    out["per_filter"] = {label: {"share_of_items_allowed": round(sum(c.allows(it) for it in catalog) / len(catalog), 4),
                                 "p50_ms": round(float(np.median(per_filter[label])), 2)}
                         for label, c in ((_label(c), c) for c in filters)}
    return out


def run(quick: bool = False) -> dict:
    from retrieval.catalog.movielens import load_movielens_100k
    from retrieval.config import StoreConfig
    from retrieval.embeddings import SentenceEncoder
    from retrieval.store import ItemStore

    repeat = 60 if quick else 300
    encoder = SentenceEncoder()
    encoder.encode(["warm-up"])
    figures: dict = {"load_avg_1m_at_start": round(os.getloadavg()[0], 2), "k": K, "queries_per_case": repeat, "variant": "quick (fewer queries)" if quick else "full",
                     "query_embedding": timings(lambda: encoder.encode_query("sci-fi and action films"), repeat, 3)}
    catalog = load_movielens_100k().catalog
    home = Path(tempfile.gettempdir()) / "marquee-bench-query"
    store = ItemStore(StoreConfig(collection="bench-ml"), encoder, home)
    store.index(catalog, progress=False)
    figures["ml100k"] = {"items": store.count(), **measure(store, catalog, repeat)}

    synthetic = synthetic_catalog(SYNTHETIC_ITEMS, catalog.genres())
    big = ItemStore(StoreConfig(collection="bench-synthetic"), synthetic_encoder(), home)
    started = time.perf_counter()
    report = big.index(synthetic, progress=True)
    figures["synthetic_100k"] = {
        "items": big.count(), "index_s": round(time.perf_counter() - started, 1),
        "index_was_reused": not report.switched,
        "documents": "seeded random unit vectors (not MiniLM); queries embedded with real MiniLM",
        **measure(big, synthetic, repeat)}
    figures["peak_rss_mb"] = peak_rss_mb()
    figures["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    return figures


if __name__ == "__main__":  # python -m benchmarks.query [--quick] [--out DIR]
    from benchmarks.cli import main

    main("query")
