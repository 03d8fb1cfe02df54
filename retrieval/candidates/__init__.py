"""Candidate generation: semantic (Chroma), collaborative, popularity; fusion; diversity."""
from retrieval.candidates.base import Candidate, CandidateGenerator, CandidateRequest, Constraints

__all__ = ["Candidate", "CandidateGenerator", "CandidateRequest", "Constraints"]
