"""Which rankers `marquee eval` knows, by name: adding one touches this file only.

Each entry builds a fitted `retrieval.recommender.Recommender` from the split's TRAIN interactions. A model's
validation-tuned hyper-parameters are its own constructor defaults (retrieval/models/), and classical models are
built by `retrieval.recommender.build`, as serving builds the chat's collaborative model; `[eval.params.NAME]` in
marquee.toml overrides them. `defaults` holds evaluation-only parameters (which
ranker a reranker reorders).
A ranker whose component is not installed or built yet raises `ComponentMissing`: the harness skips it
with a loud message in the report instead of failing the whole run.
"""
from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import retrieval.models  # noqa: F401  (registers the classical models; imported once, not inside a timed fit)
from finetune.data.splits import Split
from retrieval.catalog.schema import Dataset
from retrieval.recommender import Recommender, build, create

FAMILIES = ("floor", "baseline", "llm", "diagnostic")  # "baseline" and "floor" compete for "best baseline"


class ComponentMissing(RuntimeError):
    """A ranker's component (module, model files, index) is not available in this installation."""


@dataclass
class BuildContext:
    dataset: Dataset
    split: Split
    home: Path
    seed: int = 0
    settings: Any = None  # retrieval.config.Settings-like; needed by the hybrid retriever and LLM rankers
    retriever: Recommender | None = None  # the fitted base ranker of a reranker
    log: Callable[[str], None] = print


@dataclass(frozen=True)
class RankerEntry:
    name: str
    family: str
    build: Callable[[BuildContext, dict[str, Any]], Recommender]
    defaults: dict[str, Any] = field(default_factory=dict)
    reranks: bool = False  # scores only the top `rerank_depth` candidates of params["retriever"]
    description: str = ""


RANKERS: dict[str, RankerEntry] = {}


def ranker(name: str, family: str, defaults: dict[str, Any] | None = None, reranks: bool = False,
           description: str = ""):
    if family not in FAMILIES:
        raise ValueError(f"unknown ranker family {family!r}")

    def deco(build):
        RANKERS[name] = RankerEntry(name, family, build, dict(defaults or {}), reranks, description)
        return build

    return deco


VARIANT = "@"  # "llm-lora@alone": the ranker llm-lora with the extra params of [eval.params."llm-lora@alone"]


def entry(name: str) -> RankerEntry:
    """The registry entry of `name`; a variant `NAME@LABEL` shares NAME's entry (ablation rows)."""
    try:
        return RANKERS[name.split(VARIANT, 1)[0]]
    except KeyError:
        raise ValueError(unknown_ranker_message([name])) from None


def unknown_ranker_message(names: list[str], where: str = "") -> str:
    hints = []
    for name in names:
        close = difflib.get_close_matches(name.split(VARIANT, 1)[0], list(RANKERS), n=1, cutoff=0.6)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return (f"unknown ranker{'s' if len(names) > 1 else ''} {', '.join(hints)}{where}; known: {', '.join(RANKERS)} "
            f"(and variants NAME{VARIANT}LABEL)")


def check_ranker_names(config) -> None:
    """Every name in [eval] rankers and every table of [eval.params] is a known ranker (or a variant of one):
    a typo fails before hours of work, not silently."""
    for names, where in ((config.rankers, " in [eval] rankers"), (list(config.params), " in [eval.params]")):
        unknown = [n for n in names if n.split(VARIANT, 1)[0] not in RANKERS]
        if unknown:
            raise ValueError(unknown_ranker_message(unknown, where))


def require(module: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ComponentMissing(f"{what} is not installed yet ({module}: {exc})") from exc


def _fit(model: Recommender, ctx: BuildContext) -> Recommender:
    return model.fit(ctx.split.train, ctx.dataset.catalog)


# --- classical rankers -------------------------------------------------------------------------------
def model(name: str, ctx: BuildContext, params: dict[str, Any]) -> Recommender:
    """The unfitted classical ranker `name`, built as serving builds it (`retrieval.recommender.build`: tuned
    defaults, the run's seed and weight cache) with the run's `[eval.params]` on top."""
    return build(name, ctx.home, ctx.seed, **params)


@ranker("random", "floor", description="uniform random scores (seeded)")
def _random(ctx, params):
    return _fit(model("random", ctx, params), ctx)


@ranker("mostpop", "floor", description="train interaction counts")
def _mostpop(ctx, params):
    return _fit(model("mostpop", ctx, params), ctx)


@ranker("itemknn", "baseline", description="item-kNN, TF-IDF cosine (validation-tuned)")
def _itemknn(ctx, params):
    return _fit(model("itemknn", ctx, params), ctx)


@ranker("ease", "baseline", description="EASE, l2 tuned on validation")
def _ease(ctx, params):
    return _fit(model("ease", ctx, params), ctx)


@ranker("ease-recency", "baseline", description="EASE scoring a recency-weighted history (validation-tuned)")
def _ease_recency(ctx, params):
    return _fit(model("ease-recency", ctx, params), ctx)


def _fit_sequential(model: Recommender, ctx: BuildContext, label: str) -> Recommender:
    """Fit a model with a SASRec inside: early stopping on the split's validation cases, epochs logged."""
    validation = [(c.history, c.target) for c in ctx.split.validation_cases()]
    model.fit(ctx.split.train, ctx.dataset.catalog, validation=validation,
              progress=lambda p: ctx.log(f"{label} epoch {p['epoch']}: loss {p['loss']:.3f}, "
                                         f"val NDCG@10 {p['val_ndcg@10']:.4f} ({p['seconds']:.1f}s)"))
    sasrec = getattr(model, "sasrec", model)
    if sasrec.loaded_from_cache:
        ctx.log(f"{label}: loaded {sasrec.cache_path} (best epoch {sasrec.best_epoch})")
    return model


@ranker("sasrec", "baseline", description="SASRec, full softmax, validation early stopping")
def _sasrec(ctx, params):
    return _fit_sequential(model("sasrec", ctx, params), ctx, "sasrec")


@ranker("sasrec+ease", "baseline", description="SASRec and EASE, per-user z-scored and blended (weight validation-tuned)")
def _sasrec_ease(ctx, params):
    return _fit_sequential(model("sasrec+ease", ctx, params), ctx, "sasrec+ease")


@ranker("semantic", "baseline", description="MiniLM: mean embedding of the last 5 history titles vs every item (validation-tuned)")
def _semantic(ctx, params):
    embeddings = require("retrieval.embeddings", "the sentence encoder (STORE, retrieval.embeddings)")
    try:
        encoder = embeddings.SentenceEncoder(getattr(ctx.settings, "embedding", None))
    except embeddings.ModelMissingError as exc:
        raise ComponentMissing(str(exc)) from exc
    return _fit(create("semantic", encoder=encoder, home=ctx.home, **params), ctx)


@ranker("next-id-canary", "diagnostic", description="leak canary: the id just above the last one")
def _canary(ctx, params):
    from finetune.evaluation.canary import NextIdCanary

    return _fit(NextIdCanary(), ctx)


# --- our pipeline: hybrid retriever and LLM rerankers ---------------------------------------------------
@ranker("hybrid", "baseline", description="our chat retriever ignoring the request (candidates.fusion: blend = "
        "SASRec+EASE, popularity and liked-title signals weighted; rrf = semantic + collaborative + popularity RRF)")
def _hybrid(ctx, params):
    service_mod = require("retrieval.service", "the hybrid retriever (CANDIDATES, retrieval.service)")
    if ctx.settings is None:
        raise ComponentMissing("the hybrid retriever needs settings (home, catalog, embedding, store, candidates)")
    settings = ctx.settings.model_copy(update={"home": ctx.home})
    config = type(settings.candidates).model_validate({**settings.candidates.model_dump(), **params})
    service = service_mod.RetrievalService(settings, dataset=ctx.dataset)
    # unfitted: its collaborative and popularity parts are fitted on TRAIN only, never on the whole log
    return _fit(service.build_retriever(config, fitted=False), ctx)


def _llm(ctx: BuildContext, params: dict[str, Any], adapter: str) -> Recommender:
    reranker = require("agent.llm.reranker", "the LLM reranker (LLM, agent.llm)")
    if ctx.settings is None:
        raise ComponentMissing("the LLM reranker needs settings with an [llm] section")
    loading = require("agent.llm.loading", "the LLM model loader (LLM, agent.llm)")
    if adapter == "default" and params.get("adapter"):  # a variant naming another trained adapter (a folder)
        adapter = params["adapter"]
    if adapter == "default" and loading.resolve_adapter("default", ctx.home) is None:
        # the loader would quietly fall back to the base model: that row would be zero-shot, mislabelled
        raise ComponentMissing(f"no trained LoRA adapter at {loading.home_adapter_dir(ctx.home)} or "
                               f"{loading.default_adapter_dir()} yet (train one with `marquee finetune --ship`)")
    if adapter == "none" and "scorer" not in params:
        # zero-shot with the shipped adapter's scorer: "LoRA vs zero-shot" then compares like with like
        params = {**params, "scorer": shipped_meta(loading, ctx.home).get("scorer", reranker.DEFAULT_SCORER)}
    # validated like [llm] of marquee.toml: a misspelt parameter is an error, not a silently ignored knob
    llm_cfg = type(ctx.settings.llm).model_validate({**ctx.settings.llm.model_dump(),
                                                     **{k: v for k, v in params.items() if k != "retriever"}})
    try:
        model = reranker.LLMReranker.from_config(llm_cfg, ctx.home, base=ctx.retriever,
                                                      catalog=ctx.dataset.catalog, adapter=adapter)
    except (FileNotFoundError, ImportError, loading.ModelNotAvailable) as exc:
        raise ComponentMissing(f"LLM reranker with adapter {adapter!r} is not available: {exc}") from exc
    return _fit(model, ctx)


def shipped_meta(loading, home=None) -> dict[str, Any]:
    """marquee.json of the default adapter (scorer, retriever, tuned weight), {} when there is none."""
    import json

    path = loading.resolve_adapter("default", home)
    meta = path / loading.ADAPTER_META if path is not None else None
    return json.loads(meta.read_text()) if meta is not None and meta.is_file() else {}


def _shipped_retriever() -> str:
    """The retriever the packaged adapter was trained over and tuned against (its marquee.json), so the LLM rows
    rerank the candidates their fusion weight was tuned for."""
    import json

    try:
        from agent.llm import loading

        return json.loads((loading.default_adapter_dir() / loading.ADAPTER_META).read_text()).get("retriever", "sasrec")
    except (ImportError, OSError, ValueError):
        return "sasrec"


SHIPPED_RETRIEVER = _shipped_retriever()


@ranker("llm-zeroshot", "llm", reranks=True, defaults={"retriever": SHIPPED_RETRIEVER},
        description="SmolLM2 rerank, no adapter (the shipped adapter's scorer)")
def _llm_zeroshot(ctx, params):
    return _llm(ctx, params, adapter="none")


@ranker("llm-lora", "llm", reranks=True, defaults={"retriever": SHIPPED_RETRIEVER},
        description="SmolLM2 rerank with the shipped LoRA adapter (its scorer and tuned fusion weight)")
def _llm_lora(ctx, params):
    return _llm(ctx, params, adapter="default")
