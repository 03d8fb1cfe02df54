"""RetrievalService: the one place that builds the retrieval stack from settings.

    service = RetrievalService.from_config(settings)      # retrieval.config.Settings or any object with
                                                          # .home .catalog .embedding .store .candidates
    service.ensure_index()                                # build / update the Chroma index (progress bar)
    service.candidates(CandidateRequest(query="sci-fi and action films"), k=20)
    service.search_titles("terminator 2")                 # [(Item, score)]
    service.evidence.connections(picks, sources)          # co-occurrence / rating / popularity of picks
    train_only = service.with_interactions(train)         # same catalog and index; models, popularity and
                                                          # known users' histories from `train` alone

Everything is built lazily and once (dataset, fitted collaborative models, encoder, store), under a
lock, so a web server's threads share one stack and a CLI call pays only for what it uses.
"""
from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.candidates.base import Candidate, CandidateRequest
from retrieval.candidates.collaborative import CollaborativeGenerator, TrainingProgress
from retrieval.candidates.filtering import CatalogArrays
from retrieval.candidates.hybrid import HybridRetriever
from retrieval.candidates.popularity import PopularityGenerator
from retrieval.candidates.semantic import SemanticGenerator
from retrieval.catalog.loaders import with_popularity
from retrieval.catalog.schema import Catalog, Dataset, Interactions, Item
from retrieval.config import CandidateConfig
from retrieval.constraints import Constraints
from retrieval.histories import UserHistories

log = logging.getLogger(__name__)


class UnknownGenreError(ValueError):
    """A genre name that is not in the catalog; the message lists the valid ones."""


class UnknownItemError(KeyError):
    """An item id that is not in the catalog."""

    def __str__(self) -> str:  # KeyError would print the repr of its argument
        return str(self.args[0]) if self.args else "unknown item"


def _locked_once(method):
    """cached_property whose first computation holds the service lock (threads share one build)."""

    name = method.__name__

    def getter(self):
        with self._lock:
            if name in self.__dict__:  # another thread built it while this one waited
                return self.__dict__[name]
            return method(self)

    getter.__name__ = method.__name__
    getter.__doc__ = method.__doc__
    return cached_property(getter)


class RetrievalService:
    def __init__(self, settings: Any, dataset: Dataset | None = None):
        """`dataset`: use this catalog + interaction log instead of loading `settings.catalog`."""
        missing = [a for a in ("home", "catalog", "embedding", "store", "candidates") if not hasattr(settings, a)]
        if missing:
            raise TypeError(f"settings object lacks {', '.join(missing)} (pass retrieval.config.Settings or similar)")
        self.settings = settings
        self.home = Path(settings.home).expanduser()
        self._lock = threading.RLock()
        self._index_checked = False
        self._vectors: dict[str, np.ndarray] = {}
        if dataset is not None:
            self.__dict__["dataset"] = dataset  # fills the cached property below

    def with_interactions(self, interactions: Interactions,
                          candidates: CandidateConfig | None = None) -> "RetrievalService":
        """A service over the same catalog and search index whose log-based parts (collaborative models,
        popularity, a known user's history) come from `interactions` alone, e.g. an evaluation's train
        split, so that no held-out interaction can reach an agent built on it. `candidates` overrides the
        candidate settings. The index holds item content only, so both services share it: it is checked
        here against this service's catalog and never rebuilt for the derived one."""
        catalog = self.catalog
        if len(interactions) and (int(interactions.items.max()) >= len(catalog) or int(interactions.items.min()) < 0):
            raise ValueError(f"interactions refer to item indices outside catalog {catalog.name!r} "
                             f"({len(catalog)} items)")
        self.ensure_index(progress=False)
        settings = self.settings
        if candidates is not None:
            settings = copy.copy(settings)
            settings.candidates = candidates
        dataset = Dataset(catalog=with_popularity(catalog, interactions), interactions=interactions,
                          user_features=self.dataset.user_features)
        derived = RetrievalService(settings, dataset=dataset)
        derived.__dict__.update(encoder=self.encoder, store=self.store)  # content only: shared
        if "catalog_vectors" in self.__dict__:
            derived.__dict__["catalog_vectors"] = self.catalog_vectors
        derived._vectors = self._vectors
        derived._index_checked = True
        return derived

    @classmethod
    def from_config(cls, settings: Any) -> "RetrievalService":
        return cls(settings)

    @property
    def config(self) -> CandidateConfig:
        return self.settings.candidates

    # --- lazily built parts ---------------------------------------------------------------------
    @_locked_once
    def dataset(self) -> Dataset:
        from retrieval.catalog import load_dataset

        return load_dataset(self.settings.catalog, self.home)

    @property
    def catalog(self) -> Catalog:
        return self.dataset.catalog

    @_locked_once
    def arrays(self) -> CatalogArrays:
        return CatalogArrays(self.catalog)

    @_locked_once
    def histories(self) -> UserHistories:
        """Known users' logged histories, oldest first (the chat's "I am user 196")."""
        return UserHistories(self.dataset.interactions)

    @_locked_once
    def evidence(self):
        """Co-occurrence, rating and popularity statistics of this service's log (retrieval.evidence), for the
        evidence of each pick; built once (20–65 ms on MovieLens-100k)."""
        from retrieval.evidence import LogEvidence

        return LogEvidence(self.catalog, self.dataset.interactions)

    @_locked_once
    def encoder(self):
        from retrieval.embeddings import SentenceEncoder

        return SentenceEncoder(self.settings.embedding)

    @_locked_once
    def store(self):
        from retrieval.store import ItemStore

        return ItemStore(self.settings.store, self.encoder, self.home)

    @_locked_once
    def catalog_vectors(self) -> np.ndarray:
        """The stored vectors of every catalog item, in catalog order (the blend's semantic signal)."""
        self.ensure_index(progress=False)
        return np.asarray(self.store.embeddings([it.item_id for it in self.catalog]), dtype=np.float32)

    def collaborative_generator(self, config: CandidateConfig) -> CollaborativeGenerator:
        """An unfitted generator for `config`'s models: tuned defaults (`retrieval.recommender.build`, as `marquee
        eval`), weights cached in MARQUEE_HOME, a progress line while a sequential model trains."""
        return CollaborativeGenerator(self.arrays, model=config.collaborative_model, anchor_model=config.anchor_model,
                                      home=self.home, progress=TrainingProgress(self.catalog.name))

    @_locked_once
    def collaborative(self) -> CollaborativeGenerator:
        return self.collaborative_generator(self.config).fit(self.dataset.interactions, self.catalog)

    @_locked_once
    def retriever(self) -> HybridRetriever:
        """The hybrid retriever behind `candidates()`, on models fitted to the whole interaction log."""
        return self.build_retriever()

    def build_retriever(self, config: CandidateConfig | None = None, fitted: bool = True) -> HybridRetriever:
        """A HybridRetriever over this service's store. `config` overrides the candidate settings (e.g.
        diversity knobs); `fitted=False` gives it its own unfitted collaborative and popularity parts,
        for the evaluation harness to `fit(train, catalog)` without touching the live retriever:

            hybrid = service.build_retriever(fitted=False).fit(train, service.catalog)
        """
        self.ensure_index(progress=False)
        config = config or self.config
        same_models = (config.collaborative_model, config.anchor_model) == (self.config.collaborative_model,
                                                                            self.config.anchor_model)
        if fitted and same_models:
            collaborative = self.collaborative
        else:
            collaborative = self.collaborative_generator(config)
            if fitted:
                collaborative.fit(self.dataset.interactions, self.catalog)
        semantic = SemanticGenerator(self.store, self.catalog, item_matrix=lambda: self.catalog_vectors)
        return HybridRetriever(self.catalog, config, semantic=semantic, collaborative=collaborative,
                               popularity=PopularityGenerator(self.arrays), embeddings=self.item_vectors,
                               arrays=self.arrays)

    @_locked_once
    def titles(self):
        from retrieval.titles import TitleMatcher

        return TitleMatcher(self.catalog)

    # --- operations -----------------------------------------------------------------------------
    def ensure_index(self, progress: bool = True):
        """Check the Chroma index and bring it up to date with the catalog (incremental: only changed items
        are embedded). Checked once per service; returns the store's report, or None when nothing was built.

        A damaged index never serves: the start-up check (`ItemStore.verify`: files, count, probe searches)
        finds it and the index is rebuilt here into a new snapshot, with a warning naming the damage; the
        damaged files go to `<home>/quarantine/`. Why rebuild rather than refuse to start: the index is
        derived data (catalog + descriptions), the rebuild is the same atomic build `marquee index` does
        (~20 s for MovieLens-100k on 2 cores), and nothing is deleted. If the rebuilt index still fails the
        check, starting fails with the damage and the fix.
        """
        from retrieval.indexing import IndexDamagedError
        from retrieval.store_check import REPAIR_FIX

        with self._lock:
            if self._index_checked:
                return None
            # Read-only check first: an intact, up-to-date index needs no build lock (another process may
            # be serving from it, or indexing, right now).
            report = None
            health = self.store.verify(self.catalog)
            if not health.ok:
                # index() checks again under the build lock (another process may have repaired it meanwhile)
                report = self.store.index(self.catalog, progress=progress)
                after = self.store.verify(self.catalog)
                if not after.ok:
                    raise IndexDamagedError(f"the search index in {self.store.location} is still damaged after a "
                                            f"rebuild ({after.summary()}). Fix: {REPAIR_FIX}")
                log.warning("search index rebuilt: %s", report.summary())
            elif health.status.stale:
                log.info("search index missing or stale: indexing %d items", len(self.catalog))
                report = self.store.index(self.catalog, progress=progress)
            self._index_checked = True
            return report

    def candidates(self, request: CandidateRequest, k: int | None = None) -> list[Candidate]:
        """Up to k (default candidates.count) fused candidates; every one obeys the request's hard
        constraints and is none of the liked / disliked / history / excluded items."""
        self.check_request(request)
        return self.retriever.generate(request, self.config.count if k is None else k)

    def item(self, item_id: str) -> Item:
        item = self.catalog.get(str(item_id))
        if item is None:
            raise UnknownItemError(f"no item with id {item_id!r} in catalog {self.catalog.name!r}")
        return item

    def search_titles(self, text: str, limit: int = 5) -> list[tuple[Item, float]]:
        return self.titles.match(text, limit)

    def item_vectors(self, item_ids: Sequence[str]) -> np.ndarray:
        """Stored embeddings of items (cached in memory after the first look-up), for MMR."""
        missing = [i for i in dict.fromkeys(item_ids) if i not in self._vectors]
        if missing:
            for item_id, vector in zip(missing, self.store.embeddings(missing)):
                self._vectors[item_id] = np.asarray(vector, dtype=np.float32)
        return np.stack([self._vectors[i] for i in item_ids]) if item_ids else np.zeros((0, 0), np.float32)

    # --- validation helpers (shared by the CLI, the agent and the web page) ----------------------
    def resolve_genres(self, names: Iterable[str]) -> frozenset[str]:
        """Catalog spellings of genre names given in any case ("sci-fi" -> "Sci-Fi")."""
        known = {g.casefold(): g for g in self.catalog.genres()}
        out, unknown = set(), []
        for name in names:
            key = name.strip().casefold()
            if key in known:
                out.add(known[key])
            else:
                unknown.append(name)
        if unknown:
            raise UnknownGenreError(f"unknown genre{'s' if len(unknown) > 1 else ''} "
                                    f"{', '.join(repr(u) for u in unknown)}; valid genres: "
                                    f"{', '.join(self.catalog.genres())}")
        return frozenset(out)

    def check_request(self, request: CandidateRequest) -> None:
        """Reject constraints that cannot be right (rather than silently returning nothing)."""
        c: Constraints = request.constraints
        genres = set(self.catalog.genres())
        bad = sorted((c.include_genres | c.exclude_genres) - genres)
        if bad:
            raise UnknownGenreError(f"unknown genres {bad}; valid genres: {', '.join(sorted(genres))}")
        if c.genre_mode not in ("any", "all"):
            raise ValueError(f"genre_mode must be 'any' or 'all', got {c.genre_mode!r}")
        if c.year_min is not None and c.year_max is not None and c.year_min > c.year_max:
            raise ValueError(f"year range is empty: year_min {c.year_min} > year_max {c.year_max}")
