"""Classical rankers behind the `Recommender` interface; importing this package registers them."""
from retrieval.models.popularity import MostPop, RandomRanker
from retrieval.models.ease import EASE
from retrieval.models.itemknn import ItemKNN
from retrieval.models.sasrec import SASRec
from retrieval.models.blend import ScoreBlend
from retrieval.models.semantic import SemanticRanker

__all__ = ["EASE", "ItemKNN", "MostPop", "RandomRanker", "SASRec", "ScoreBlend", "SemanticRanker"]
