"""Item-item baselines (ItemKNN, EASE), recency weighting and the semantic-only ranker."""
from __future__ import annotations

import numpy as np
import pytest

from retrieval.catalog.schema import Catalog, Interactions, Item
from retrieval.models.ease import EASE
from retrieval.models.itemknn import ItemKNN, weight_rows
from retrieval.models.semantic import SemanticRanker
from retrieval.models.weighting import weighted_history_matrix
from retrieval.recommender import UserContext, create


def log(pairs: list[tuple[int, int]], n_users: int) -> Interactions:
    users, items = zip(*pairs)
    return Interactions(user_ids=tuple(str(u) for u in range(n_users)), users=np.asarray(users, np.int32),
                        items=np.asarray(items, np.int32), ratings=np.ones(len(pairs), np.float32),
                        timestamps=np.arange(len(pairs), dtype=np.int64))


CATALOG = Catalog([Item(item_id=str(i), title=f"Item {i}") for i in range(6)])
# items 0-1-2 are co-consumed, items 3-4 are co-consumed, item 5 is rare
TRAIN = log([(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 1), (2, 2), (3, 3), (3, 4), (4, 3), (4, 4), (5, 4),
             (5, 5)], n_users=6)


@pytest.mark.parametrize("model", [ItemKNN(neighbours=3), ItemKNN(weighting="bm25", shrink=1.0),
                                   ItemKNN(weighting="none", normalize_scores=True), EASE(l2=5.0)])
def test_cooccurrence_drives_the_scores(model):
    model.fit(TRAIN, CATALOG)
    scores = model.score([UserContext(history=(0,)), UserContext(history=(3,))])
    assert scores[0, 1] > scores[0, 3] and scores[0, 2] > scores[0, 4]
    assert scores[1, 4] > scores[1, 0]


def test_itemknn_keeps_k_neighbours_per_item():
    model = ItemKNN(neighbours=1, weighting="none").fit(TRAIN, CATALOG)
    assert ((model.similarity > 0).sum(axis=1) <= 1).all()
    assert model.similar(3, 2) == [(4, pytest.approx(model.similarity[3, 4]))]


def test_tfidf_down_weights_heavy_users():
    x = TRAIN.to_csr(6)
    weighted = weight_rows(x, "tfidf").toarray()
    assert weighted[0, 0] < weighted[1, 0]  # user 0 consumed 3 items, user 1 only 2


def test_recency_weighting_favours_recent_history():
    users = [UserContext(history=(0, 3))]  # 0 long ago, 3 most recent
    x = weighted_history_matrix(users, 6, recency_halflife=1.0)
    assert x[0, 3] == 1.0 and x[0, 0] == 0.5
    assert weighted_history_matrix(users, 6, None)[0, [0, 3]].tolist() == [1.0, 1.0]
    model = EASE(l2=1.0, recency_halflife=0.5).fit(TRAIN, CATALOG)
    scores = model.score(users)[0]
    assert scores[4] > scores[1]  # neighbours of the recent item win


def test_bad_parameters_are_explained():
    with pytest.raises(ValueError, match="weighting"):
        ItemKNN(weighting="idf")
    with pytest.raises(ValueError, match="l2"):
        EASE(l2=0)
    with pytest.raises(ValueError, match="unknown recommender"):
        create("nope")


@pytest.fixture(scope="module")
def encoder():
    from retrieval.embeddings import SentenceEncoder

    return SentenceEncoder()


def test_semantic_ranker_uses_item_text(encoder, tmp_path):
    catalog = Catalog([
        Item(item_id="1", title="Star Wars", year=1977, genres=("Action", "Sci-Fi"),
             description="Space battles, rebels and an evil galactic empire."),
        Item(item_id="2", title="The Empire Strikes Back", year=1980, genres=("Action", "Sci-Fi"),
             description="The rebels flee the galactic empire across space."),
        Item(item_id="3", title="Sleepless in Seattle", year=1993, genres=("Comedy", "Romance"),
             description="A widower and a journalist fall in love over the radio."),
        Item(item_id="4", title="Return of the Jedi", year=1983, genres=("Action", "Sci-Fi"),
             description="The rebel alliance fights the empire's space station."),
    ])
    inter = log([(0, 0)], n_users=1)
    model = SemanticRanker(encoder=encoder, text="document", recent=0, home=tmp_path).fit(inter, catalog)
    scores = model.score([UserContext(history=(0, 1)), UserContext()])
    assert scores[0, 3] > scores[0, 2]  # space opera history: Jedi before the romance
    assert np.all(scores[1] == 0)
    cached = list((tmp_path / "models").glob("semantic-*.npy"))
    assert len(cached) == 1
    again = SemanticRanker(encoder=encoder, text="document", recent=0, home=tmp_path).fit(inter, catalog)
    assert np.allclose(again.vectors, model.vectors)
    with pytest.raises(ValueError, match="text must be"):
        SemanticRanker(text="plot")


def test_blend_standardises_members_and_weights_them():
    from retrieval.models.blend import ScoreBlend
    from retrieval.recommender import Recommender

    class Fixed(Recommender):
        def __init__(self, row):
            self.row = np.asarray(row, dtype=np.float64)

        def score(self, users, candidates=None):
            return np.tile(self.row, (len(users), 1))

    big = Fixed([1000.0, 0.0, 0.0, 0.0, 0.0, 500.0])  # a large scale must not drown the other member
    small = Fixed([0.0, 0.0, 3.0, 0.0, 0.0, 2.0])
    users = [UserContext(history=(1,))]
    assert np.argmax(ScoreBlend([(big, 1.0), (small, 0.0)]).fit(TRAIN, CATALOG).score(users)[0]) == 0
    assert np.argmax(ScoreBlend([(big, 0.0), (small, 1.0)]).fit(TRAIN, CATALOG).score(users)[0]) == 2
    both = ScoreBlend([(big, 1.0), (small, 1.0)]).fit(TRAIN, CATALOG)
    assert np.argmax(both.score(users)[0]) == 5  # second for both members, first for their blend
    np.testing.assert_allclose(both.score(users, np.array([[5, 0]]))[0], both.score(users)[0][[5, 0]])
    with pytest.raises(ValueError, match="non-negative"):
        ScoreBlend([(big, -1.0), (small, 1.0)])
    blend = create("blend", members=[(EASE(l2=5.0), 1.0)]).fit(TRAIN, CATALOG)  # unfitted members get fitted
    assert blend.members[0][0].n_items == 6
