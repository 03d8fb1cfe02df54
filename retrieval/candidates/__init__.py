"""Candidate generation: semantic (Chroma), collaborative, popularity; fusion; diversity.

`HybridRetriever` composes the generators; `retrieval.service.RetrievalService` builds it from config.
"""
from retrieval.candidates.base import Candidate, CandidateGenerator, CandidateRequest
from retrieval.candidates.collaborative import CollaborativeGenerator
from retrieval.candidates.diversity import long_tail_rerank, mmr
from retrieval.candidates.filtering import CatalogArrays, effective_constraints
from retrieval.candidates.fusion import reciprocal_rank_fusion
from retrieval.candidates.hybrid import HybridRetriever
from retrieval.candidates.popularity import PopularityGenerator
from retrieval.candidates.semantic import SemanticGenerator
from retrieval.constraints import Constraints

__all__ = ["Candidate", "CandidateGenerator", "CandidateRequest", "CatalogArrays", "CollaborativeGenerator",
           "Constraints", "HybridRetriever", "PopularityGenerator", "SemanticGenerator", "effective_constraints",
           "long_tail_rerank", "mmr", "reciprocal_rank_fusion"]
