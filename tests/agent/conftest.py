"""Agent fixtures: one real retrieval stack (MovieLens-100k, MiniLM, Chroma) and one agent per test session.

The shared agent runs the deterministic pipeline without the LLM (fast); tests/agent/test_agent_llm.py
exercises the LLM reranker and explainer through the same API.
"""
from __future__ import annotations

import uuid

import pytest


@pytest.fixture(scope="session")
def agent_settings(shared_home):
    from retrieval.config import Settings

    return Settings.load(home=shared_home, agent={"rerank": False, "explain": "template"})


@pytest.fixture(scope="session")
def agent(agent_settings):
    from agent.core import RecommenderAgent

    return RecommenderAgent(agent_settings)


@pytest.fixture(scope="session")
def catalog(ml100k):
    return ml100k.catalog


@pytest.fixture(scope="session")
def parser(catalog):
    """The production parser wiring (real TitleMatcher over the real catalog), without an agent."""
    from agent.understanding import PreferenceParser
    from agent.understanding.aliases import AliasIndex
    from retrieval.titles import TitleMatcher

    matcher = TitleMatcher(catalog)

    def match(text):
        hits = matcher.match(text, 1)
        return (hits[0][0].item_id, hits[0][0].label, hits[0][1]) if hits and hits[0][1] >= 85 else None

    return PreferenceParser(match, (1922, 1998), titles=[it.title for it in catalog],
                            aliases=AliasIndex.for_catalog({it.item_id: it.label for it in catalog}))


@pytest.fixture
def sid() -> str:
    """A fresh session id per test (sessions share one SQLite file)."""
    return f"t-{uuid.uuid4().hex[:12]}"
