"""The LLM runtime: model loading, the one-pass reranker and its registered scorers (`agent.llm.scorers`), grounded
explanations, item descriptions, streaming, and an OpenAI-compatible remote backend. Names are imported lazily (torch stays out of `--help`).

    from agent.llm import load_model, LocalBackend, LLMReranker, Explainer, UserSummary
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "load_model": "agent.llm.loading", "LoadedModel": "agent.llm.loading", "ModelNotAvailable": "agent.llm.loading",
    "LocalBackend": "agent.llm.backend", "RemoteBackend": "agent.llm.remote",
    "LLMReranker": "agent.llm.reranker", "Reranked": "agent.llm.reranker",
    "UserSummary": "agent.llm.prompting", "RerankPrompt": "agent.llm.prompting", "LabelSet": "agent.llm.prompting",
    "LabelError": "agent.llm.prompting", "build_rerank_prompt": "agent.llm.scorers.listwise",
    "training_example": "agent.llm.scorers.listwise",
    "Scorer": "agent.llm.scorers", "register_scorer": "agent.llm.scorers", "create_scorer": "agent.llm.scorers",
    "Explainer": "agent.llm.explainer", "Explanation": "agent.llm.explainer",
    "GroundingChecker": "agent.llm.grounding", "DescriptionWriter": "agent.llm.describe",
    "stream_text": "agent.llm.streaming", "stream_prompt": "agent.llm.streaming",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)
