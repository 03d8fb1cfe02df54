"""Classical rankers behind the `Recommender` interface; importing this package registers them.

Each model's constructor defaults are its tuned hyper-parameters (with the measurements beside them), so the
evaluation (`marquee eval`) and serving (`retrieval.service`) build the same model from `create(name)`.
Named presets of a model (e.g. "ease-recency") are registered next to it (`register_preset`)."""
from retrieval.models.popularity import MostPop, RandomRanker
from retrieval.models.ease import EASE
from retrieval.models.itemknn import ItemKNN
from retrieval.models.sasrec import SASRec
from retrieval.models.blend import ScoreBlend
from retrieval.models.sasrec_ease import SASRecEASE
from retrieval.models.semantic import SemanticRanker

__all__ = ["EASE", "ItemKNN", "MostPop", "RandomRanker", "SASRec", "SASRecEASE", "ScoreBlend", "SemanticRanker"]
