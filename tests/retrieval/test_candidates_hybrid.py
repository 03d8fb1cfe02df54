"""HybridRetriever on a real index: MiniLM embeddings of the real ML-100k catalog in embedded Chroma
(built once per test session in the shared MARQUEE_HOME), collaborative models fitted on the real log."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrieval.candidates.base import CandidateRequest
from retrieval.candidates.diversity import intra_list_similarity
from retrieval.candidates.hybrid import HybridRetriever
from retrieval.config import CandidateConfig, CatalogConfig, EmbeddingConfig, StoreConfig
from retrieval.constraints import Constraints
from retrieval.recommender import UserContext
from retrieval.service import RetrievalService, UnknownGenreError, UnknownItemError


@pytest.fixture(scope="module")
def service(shared_home) -> RetrievalService:
    settings = SimpleNamespace(home=shared_home, catalog=CatalogConfig(), embedding=EmbeddingConfig(),
                               store=StoreConfig(), candidates=CandidateConfig())
    svc = RetrievalService.from_config(settings)
    svc.ensure_index(progress=False)  # ~10–30 s the first time in a session, then reused
    return svc


def variant(service: RetrievalService, **config) -> HybridRetriever:
    """The service's fitted generators under another candidate config (diversity knobs, weights)."""
    return service.build_retriever(service.config.model_copy(update=config))


@pytest.fixture(scope="module")
def retrievers(service) -> list[HybridRetriever]:
    return [service.retriever, variant(service, mmr_lambda=0.5), variant(service, long_tail=1.0, mmr_lambda=0.8),
            variant(service, weights={"semantic": 1.0, "collaborative": 0.5, "popularity": 0.0})]


GENRE_NAMES = ['Action', 'Adventure', 'Animation', "Children's", 'Comedy', 'Crime', 'Documentary', 'Drama',
               'Fantasy', 'Film-Noir', 'Horror', 'Musical', 'Mystery', 'Romance', 'Sci-Fi', 'Thriller', 'War',
               'Western']
QUERIES = ["", "sci-fi and action films", "a funny romantic comedy in new york", "dark crime thriller",
           "animated movie for kids", "war", "我喜欢看电影，尤其是科幻片和动作片", "x" * 3000, "\x00\t\n"]


@st.composite
def requests(draw):
    ids = st.integers(1, 1682).map(str)
    year_min = draw(st.one_of(st.none(), st.integers(1920, 1998)))
    year_max = draw(st.one_of(st.none(), st.integers(1930, 1999)))
    constraints = Constraints(
        include_genres=frozenset(draw(st.sets(st.sampled_from(GENRE_NAMES), max_size=3))),
        exclude_genres=frozenset(draw(st.sets(st.sampled_from(GENRE_NAMES), max_size=3))),
        genre_mode=draw(st.sampled_from(["any", "all"])), year_min=year_min, year_max=year_max,
        exclude_ids=frozenset(draw(st.sets(ids, max_size=40))))
    return CandidateRequest(query=draw(st.sampled_from(QUERIES)), constraints=constraints,
                            liked=tuple(draw(st.lists(ids, max_size=4))),
                            disliked=tuple(draw(st.lists(ids, max_size=3))),
                            history=tuple(draw(st.lists(ids, max_size=10))),
                            user_id=draw(st.one_of(st.none(), st.integers(1, 943).map(str), st.just("stranger"))))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(req=requests(), k=st.integers(1, 60), which=st.integers(0, 3))
def test_hard_constraints_always_hold(service, retrievers, req, k, which):
    out = retrievers[which].generate(req, k)
    catalog = service.catalog
    ids = [c.item.item_id for c in out]
    assert len(ids) == len(set(ids)), "duplicates"
    assert len(out) <= k
    known = set(req.liked) | set(req.disliked) | set(req.history) | req.constraints.exclude_ids
    if service.collaborative.knows_user(req.user_id):
        known |= {catalog.at(int(i)).item_id for i in service.collaborative.history_of(req)}
    for cand in out:
        assert catalog.get(cand.item.item_id) == cand.item, "not a catalog row"
        assert req.constraints.allows(cand.item), (cand.item, req.constraints)
        assert cand.item.item_id not in known
        assert np.isfinite(cand.score) and cand.sources
    allowed = sum(req.constraints.allows(it) and it.item_id not in known for it in catalog)
    if which != 3:  # with a popularity prior the list is only short when the constraints leave too few items
        assert len(out) == min(k, allowed)


def test_invalid_k_is_rejected(service):
    with pytest.raises(ValueError, match="≥ 1"):
        service.candidates(CandidateRequest(query="space"), 0)


def test_cold_start_returns_popular_items(service):
    out = service.candidates(CandidateRequest(), 10)
    popular = sorted(service.catalog, key=lambda it: -it.popularity)[:10]
    assert {c.item.item_id for c in out} == {it.item_id for it in popular}
    assert all(set(c.sources) == {"popularity"} for c in out)
    older = service.candidates(CandidateRequest(constraints=Constraints(year_max=1960)), 5)
    assert [c.item.year <= 1960 for c in older] == [True] * 5
    assert older[0].item.popularity >= max(it.popularity for it in service.catalog if it.year and it.year <= 1960)


def test_semantic_query_finds_matching_genres(service):
    out = service.candidates(CandidateRequest(query="science fiction space adventure"), 20)
    assert sum("Sci-Fi" in c.item.genres for c in out) >= 12
    assert all("semantic" in c.sources for c in out[:10])


def test_like_star_wars_returns_its_collaborative_neighbours(service):
    star_wars = service.search_titles("star wars")[0][0]
    out = service.candidates(CandidateRequest(liked=(star_wars.item_id,)), 10)
    titles = {c.item.title for c in out}
    assert star_wars.item_id not in {c.item.item_id for c in out}
    assert {"Return of the Jedi", "The Empire Strikes Back"} <= titles
    assert sum("collaborative" in c.sources for c in out) >= 8
    neighbours = {i for i, _ in service.collaborative.neighbours.similar(service.catalog.index_of("50"), 10)}
    assert len(neighbours & {service.catalog.index_of(c.item.item_id) for c in out}) >= 5


def test_known_user_gets_collaborative_candidates_without_history_repeats(service):
    user = service.dataset.interactions.user_ids[5]
    out = service.candidates(CandidateRequest(user_id=user), 20)
    seen = {service.catalog.at(int(i)).item_id
            for i in service.dataset.interactions.items[service.dataset.interactions.users == 5]}
    assert len(out) == 20 and not seen & {c.item.item_id for c in out}
    assert all("collaborative" in c.sources for c in out[:10])


def test_mmr_increases_intra_list_diversity(service):
    request = CandidateRequest(query="star trek")
    plain = service.retriever.generate(request, 10)
    diverse = variant(service, mmr_lambda=0.3).generate(request, 10)
    sim = lambda cs: intra_list_similarity(service.item_vectors([c.item.item_id for c in cs]))  # noqa: E731
    assert sim(diverse) < sim(plain)
    assert diverse[0].item.item_id == plain[0].item.item_id


def test_long_tail_knob_lowers_mean_popularity(service):
    request = CandidateRequest(query="sci-fi and action films")
    plain = service.retriever.generate(request, 20)
    tail = variant(service, long_tail=1.0).generate(request, 20)
    mean = lambda cs: float(np.mean([c.item.popularity for c in cs]))  # noqa: E731
    assert mean(tail) < 0.8 * mean(plain)


@pytest.mark.parametrize("fusion", ["blend", "rrf"])
def test_recommender_interface_scores_the_whole_catalog(service, fusion):
    retriever = service.retriever if fusion == "blend" else variant(service, fusion="rrf")
    users = [UserContext(history=(49, 180, 171)), UserContext(query="film noir detective")]  # Star Wars, Jedi, Empire
    scores = retriever.score(users)
    assert scores.shape == (2, len(service.catalog)) and np.isfinite(scores).all()
    history = {49, 180, 171}  # the evaluation excludes a user's history itself (blend scores it like EASE does)
    top = [int(i) for i in np.argsort(-scores[0], kind="stable") if int(i) not in history][:20]
    fans = [service.catalog.at(i) for i in top]
    assert sum("Sci-Fi" in it.genres or "Adventure" in it.genres for it in fans) >= 10
    if fusion == "rrf":
        assert not history & {int(i) for i in np.argsort(-scores[0], kind="stable")[:20]}
    noir = [service.catalog.at(int(i)) for i in np.argsort(-scores[1], kind="stable")[:10]]
    assert sum("Film-Noir" in it.genres or "Crime" in it.genres or "Mystery" in it.genres for it in noir) >= 6
    cands = np.array([[49, 180, 171], [0, 1, 2]])
    assert retriever.score(users, cands).shape == (2, 3)


def test_service_lookups_and_errors(service):
    assert service.item("50").title == "Star Wars"
    with pytest.raises(UnknownItemError, match="no item with id '99999'"):
        service.item("99999")
    assert service.resolve_genres(["sci-fi", "FILM-NOIR"]) == {"Sci-Fi", "Film-Noir"}
    with pytest.raises(UnknownGenreError, match="valid genres: Action, Adventure"):
        service.resolve_genres(["space western"])
    with pytest.raises(UnknownGenreError):
        service.candidates(CandidateRequest(constraints=Constraints(include_genres=frozenset({"scifi"}))))
    with pytest.raises(ValueError, match="year range is empty"):
        service.candidates(CandidateRequest(constraints=Constraints(year_min=1990, year_max=1980)))
    assert service.search_titles("the godfather")[0][0].item_id == "127"


def test_evaluation_retriever_fits_on_a_training_log_without_touching_the_live_one(service):
    from retrieval.catalog.schema import Interactions

    log = service.dataset.interactions
    # EASE: the point is where the models are fitted (SASRec would train for minutes on a new log)
    hybrid = service.build_retriever(service.config.model_copy(update={"collaborative_model": "ease"}), fitted=False)
    with pytest.raises(RuntimeError, match="fit"):
        hybrid.generate(CandidateRequest(liked=("50",)), 5)
    keep = log.users != 0  # the first user's whole history is held out
    train = Interactions(user_ids=log.user_ids, users=log.users[keep], items=log.items[keep],
                         ratings=log.ratings[keep], timestamps=log.timestamps[keep])
    hybrid.fit(train, service.catalog)
    first_user = log.user_ids[0]
    assert not hybrid.collaborative.knows_user(first_user)
    assert service.retriever.collaborative.knows_user(first_user)
    held_out = {int(i) for i in log.items[~keep]}
    scores = hybrid.score([UserContext(history=tuple(sorted(held_out))[:20])])
    assert scores.shape == (1, len(service.catalog)) and np.isfinite(scores).all()
