"""LLM fixtures: the real embedded SmolLM2 (converted once per test session into the session MARQUEE_HOME)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def llm(shared_home):
    from agent.llm.loading import load_model

    return load_model(home=shared_home, adapter="none")


@pytest.fixture(scope="session")
def backend(llm):
    from agent.llm.backend import LocalBackend

    return LocalBackend(llm, batch_size=8)


@pytest.fixture(scope="session")
def catalog(ml100k):
    return ml100k.catalog


@pytest.fixture(scope="session")
def log(ml100k):
    """Evidence statistics of the ml-100k interaction log."""
    from retrieval.evidence import LogEvidence

    return LogEvidence(ml100k.catalog, ml100k.interactions)


@pytest.fixture(scope="session")
def reranker(backend):
    from agent.llm.reranker import LLMReranker

    return LLMReranker(backend, weight=1.0)
