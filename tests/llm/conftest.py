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


@pytest.fixture(scope="session")
def checker(catalog):
    from agent.llm.claims import ClaimChecker

    return ClaimChecker(catalog)


@pytest.fixture(scope="session")
def titled(catalog):
    """`titled("Fargo (1996)")`: the catalog item with that label."""
    return lambda label: next(it for it in catalog if it.label == label)


@pytest.fixture(scope="session")
def fargo_case(titled):
    """Fargo (Crime, Drama, Thriller; top-rated), picked for a viewer who liked Heat and asked for crime films."""
    from retrieval.evidence import CatalogStats, Connection, Evidence, Satisfied, SharedGenres

    fargo, heat = titled("Fargo (1996)"), titled("Heat (1995)")
    evidence = Evidence(
        item_id=fargo.item_id,
        connections=[Connection(item_id=heat.item_id, title=heat.label, relation="liked", measure="loved", fans=118,
                                also=79, percent=67, lift=1.6, strength=0.58)],
        shared_genres=[SharedGenres(item_id=heat.item_id, title=heat.label, genres=["Crime", "Thriller"])],
        satisfies=Satisfied(genres=["Crime"], asked_genres=1),
        catalog=CatalogStats(rating_mean=4.2, rating_count=508, rating_scale=5, viewers=508, popularity_rank=3,
                             catalog_size=1682, top_percent=1, rating_top_percent=4))
    return fargo, evidence


@pytest.fixture(scope="session")
def plain_case(titled):
    """Four Rooms (Thriller): a middling film nobody in the session named, for an anonymous thriller request."""
    from retrieval.evidence import CatalogStats, Evidence, Satisfied

    four = titled("Four Rooms (1995)")
    evidence = Evidence(item_id=four.item_id, satisfies=Satisfied(genres=["Thriller"], asked_genres=1),
                        catalog=CatalogStats(rating_mean=3.0, rating_count=90, rating_scale=5, viewers=90,
                                             popularity_rank=372, catalog_size=1682, top_percent=23,
                                             rating_top_percent=78))
    return four, evidence


@pytest.fixture(scope="session")
def fargo_verdict(checker, fargo_case):
    """`fargo_verdict(text)`: the strict checker's verdict on `text` about Fargo, crime films asked for."""

    def verdict(text: str):
        fargo, evidence = fargo_case
        return checker.check_claims(text, fargo, evidence, asked_genres=["Crime"])

    return verdict


@pytest.fixture(scope="session")
def fields():
    """The explain prompt's fields for two picks (prompts/explain.txt): Fargo for a crime request, Toy Story for
    "more like Fargo"."""
    return [dict(label='"Fargo (1996)"', title="Fargo", genres="Crime, Drama, Thriller", description="",
                 request='"crime films"', wishes="genres: Crime", liked="",
                 facts="1. It is Crime, as you asked.\n2. Average rating 4.2 out of 5 from 508 ratings."),
            dict(label='"Toy Story (1995)"', title="Toy Story", genres="Animation, Children's, Comedy", description="",
                 request='"More like Fargo, please."', wishes="none", liked='\nViewer liked: "Fargo (1996)"',
                 facts="1. You asked for more like Fargo (1996); 176 of its 399 fans also loved this film (44%).")]
