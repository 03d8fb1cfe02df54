"""The chat's ranking end to end (issue #12): the best model of `marquee eval` + the request. A known user's genre
request is SASRec+EASE inside the genre; chit-chat never ranks by title words; no taste signal, no user: popularity."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval.recommender import UserContext, build

ZERO = {"collaborative": 0.0, "semantic": 0.0, "mood": 0.0, "popularity": 0.0, "anchor": 0.0}


@pytest.fixture(scope="module")
def collaborative_only(agent_settings):
    """An agent whose blend keeps only the collaborative signal (every other weight 0)."""
    from agent.core import RecommenderAgent

    config = agent_settings.candidates
    candidates = type(config).model_validate({**config.model_dump(), "blend": {**ZERO, "collaborative": 1.0}})
    return RecommenderAgent(agent_settings.model_copy(update={"candidates": candidates}))


def _top_among(scores: np.ndarray, allowed: np.ndarray, k: int) -> list[int]:
    keyed = np.where(allowed, scores, -np.inf)
    return [int(i) for i in np.lexsort((np.arange(keyed.size), -keyed))[:k]]


def test_known_user_genre_request_is_sasrec_ease_inside_the_genre(collaborative_only, ml100k, shared_home, sid):
    catalog, log = ml100k.catalog, ml100k.interactions
    user = "196"
    reply = collaborative_only.chat("I am user 196. Any good sci-fi movies?", session_id=sid)
    assert reply.items and all("Sci-Fi" in item.genres for item in reply.items)
    # the same model as `marquee eval`'s sasrec+ease, built and fitted here on the whole log
    model = build("sasrec+ease", home=shared_home).fit(log, catalog)
    history = collaborative_only.service.histories.of(user)
    scores = model.score([UserContext(history=history, user_id=user)])[0]
    allowed = np.array(["Sci-Fi" in it.genres for it in catalog])
    allowed[list(history)] = False
    expected = [catalog.at(i).item_id for i in _top_among(scores, allowed, len(reply.items))]
    assert [item.item_id for item in reply.items] == expected


def test_chit_chat_without_a_user_ranks_by_popularity_not_title_words(agent, catalog, sid):
    reply = agent.chat("Sci-fi movies please. What should I watch next?", session_id=sid)
    popular = sorted((it for it in catalog if "Sci-Fi" in it.genres),
                     key=lambda it: (-it.popularity, catalog.index_of(it.item_id)))
    assert [item.item_id for item in reply.items] == [it.item_id for it in popular[:len(reply.items)]]
    assert len(reply.items) == 5 and not any("next" in item.title.lower().split() for item in reply.items)


def test_a_liked_title_without_a_user_uses_the_collaborative_model_not_its_words(agent, catalog, sid):
    reply = agent.chat("I loved The Rock. What should I watch next?", session_id=sid)
    titles = [item.title.lower().split() for item in reply.items]
    assert len(titles) == 5 and not any("next" in words for words in titles)
    assert all(item.item_id != "117" for item in reply.items)  # The Rock itself is never recommended back


def test_the_benchmarks_requests_leave_no_filler_word_for_the_semantic_signal(agent, monkeypatch):
    """`marquee eval --conversational`'s phrasings ("What should I watch next?", "Any good war movies?", "有什么好看的
    战争片吗？") carry a genre, a decade, a title or nothing: none of their words ("good", "watch", "tonight") may reach
    the blend's semantic signal as content, or the chat would rank by them."""
    from finetune.evaluation.conversational.requests import capitalised, phrasings

    sent = []
    monkeypatch.setattr(agent.pipeline, "retrieve_fn", lambda request, k: sent.append(request) or [])
    words = phrasings()
    for kind, templates in words["phrasings"].items():
        for n, template in enumerate(templates):
            for g, genre in enumerate(("War", "Sci-Fi", "Children's")):
                text = capitalised(template.format(genre=words["genre_words"][genre],
                                                   genre_zh=words["genre_words_zh"][genre], decade="80s",
                                                   decade_long="1980s", title="Heat"))
                before = len(sent)
                agent.chat(text, session_id=f"filler-{kind}-{n}-{g}", user_id="196")
                assert len(sent) > before, text
                request = sent[before]
                assert request.content == "" and not request.mood_genres, (text, request.content)
                if kind.startswith("genre"):  # (children's films: Children's or Animation)
                    assert genre in request.constraints.include_genres, (text, request.constraints)
