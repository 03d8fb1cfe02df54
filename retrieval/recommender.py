"""One interface for every ranker: classical baselines, retrievers and the LLM reranker.

The evaluation harness only talks to `Recommender`, so all rankers are measured alike
(RecBole / Cornac style: fit / score / rank).
"""
from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from retrieval.catalog.schema import Catalog, Interactions


@dataclass(frozen=True)
class UserContext:
    """What a ranker may know about one user at one moment."""

    history: tuple[int, ...] = ()  # catalog indices, oldest first (liked / consumed)
    disliked: tuple[int, ...] = ()
    query: str = ""  # free text, e.g. "sci-fi and action films"
    user_id: str | None = None
    extra: dict = field(default_factory=dict, hash=False, compare=False)


class Recommender(ABC):
    """fit on interactions, score items for users, rank the top k."""

    name: ClassVar[str] = "recommender"
    # True for models that read the history's order and train with early stopping (SASRec and blends with it):
    # their `fit` also takes `validation` pairs and a `progress(epoch_point)` callback
    sequential: ClassVar[bool] = False

    def fit(self, train: Interactions, catalog: Catalog) -> Self:
        self.n_items = len(catalog)
        return self

    @abstractmethod
    def score(self, users: Sequence[UserContext], candidates: np.ndarray | None = None) -> np.ndarray:
        """Higher is better. Shape (n_users, n_items), or (n_users, n_candidates) when `candidates`
        (one row of catalog indices per user, shape (n_users, n_candidates)) is given."""

    def get_params(self) -> dict[str, Any]:
        """The plain-valued constructor parameters this ranker holds (as scikit-learn's `get_params`): what a
        report records as the parameters a row ran with. Models that store them elsewhere override this."""
        params = {}
        for name, parameter in inspect.signature(type(self).__init__).parameters.items():
            if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            value = getattr(self, name, None)
            if isinstance(value, (bool, int, float, str)):
                params[name] = value
        return params

    def rank(self, user: UserContext, k: int, exclude: Iterable[int] = (),
             candidates: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top-k (catalog index, score); equal scores are ordered by catalog index."""
        cand = None if candidates is None else np.asarray(candidates)[None, :]
        scores = self.score([user], cand)[0].astype(np.float64)
        ids = np.arange(scores.shape[0]) if candidates is None else np.asarray(candidates)
        keep = ~np.isin(ids, np.fromiter(exclude, dtype=np.int64))
        ids, scores = ids[keep], scores[keep]
        order = np.lexsort((ids, -scores))[:k]
        return [(int(ids[i]), float(scores[i])) for i in order]


def history_matrix(users: Sequence[UserContext], n_items: int) -> np.ndarray:
    """Binary (n_users, n_items) matrix of the users' histories."""
    x = np.zeros((len(users), n_items), dtype=np.float32)
    for row, u in enumerate(users):
        if u.history:
            x[row, list(u.history)] = 1.0
    return x


def take_candidates(full: np.ndarray, candidates: np.ndarray | None) -> np.ndarray:
    return full if candidates is None else np.take_along_axis(full, np.asarray(candidates), axis=1)


RECOMMENDERS: dict[str, type[Recommender]] = {}
# name -> (registered recommender, parameters): a tuned configuration under its own name, e.g. "ease-recency"
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {}


def register(name: str) -> Callable[[type[Recommender]], type[Recommender]]:
    """Class decorator: adding a ranker touches one place (its own module)."""

    def deco(cls: type[Recommender]) -> type[Recommender]:
        cls.name = name
        RECOMMENDERS[name] = cls
        return cls

    return deco


def register_preset(name: str, base: str, **params: Any) -> None:
    """`create(name)` = `create(base, **params)`; the caller's parameters still override these."""
    PRESETS[name] = (base, dict(params))


def known_recommenders() -> list[str]:
    import retrieval.models  # noqa: F401  (registers the built-in rankers)

    return sorted([*RECOMMENDERS, *PRESETS])


def create(name: str, optional: dict[str, Any] | None = None, **params) -> Recommender:
    """A ranker by name, built with its own (tuned) defaults unless `params` say otherwise. `optional` parameters
    (e.g. `home` for a weight cache, `seed`) go only to a ranker whose constructor takes them."""
    import retrieval.models  # noqa: F401  (registers the built-in rankers)

    if name in PRESETS:
        base, preset = PRESETS[name]
        name, params = base, {**preset, **params}
    try:
        cls = RECOMMENDERS[name]
    except KeyError:
        raise ValueError(f"unknown recommender {name!r}; known: {', '.join(known_recommenders())}") from None
    if optional:
        accepted = inspect.signature(cls.__init__).parameters
        params = {**{k: v for k, v in optional.items() if k in accepted}, **params}
    return cls(**params)


def build(name: str, home: str | Path | None = None, seed: int = 0, **params) -> Recommender:
    """The ranker `name` as `marquee eval` (finetune/evaluation/rankers.py) and serving (retrieval/candidates/
    collaborative.py) both build it: its tuned constructor defaults, `params` on top (evaluation overrides), and
    the weight cache `home` and the `seed` where the model takes them. One place, so both get the same model."""
    return create(name, optional={"home": home, "seed": seed}, **params)
