"""Marquee's configuration: ONE `Settings` with every section of marquee.toml, each a strict pydantic model.

    from retrieval.config import Settings, CandidateConfig, LLMConfig, EvalConfig, FinetuneConfig

It lives in the bottom layer so every layer (retrieval, agent, finetune, benchmarks) reads the same object:
sections.py (the serving sections, [storage] included), eval.py ([eval]), conversational.py ([eval.conversational]), finetune.py
([finetune]), settings.py (loading, layering, errors).
"""
from retrieval.config.conversational import ConversationalConfig, SystemSpec, Target
from retrieval.config.eval import DEFAULT_RANKERS, EvalConfig, ProtocolChecks
from retrieval.config.finetune import FinetuneConfig
from retrieval.config.sections import (AgentConfig, CandidateConfig, CatalogConfig, EmbeddingConfig, LLMConfig,
                                       Section, ServerConfig, StorageConfig, StoreConfig)
from retrieval.config.settings import ConfigError, Settings

__all__ = ["AgentConfig", "CandidateConfig", "CatalogConfig", "ConfigError", "ConversationalConfig", "DEFAULT_RANKERS",
           "EmbeddingConfig", "EvalConfig", "FinetuneConfig", "LLMConfig", "ProtocolChecks", "Section", "ServerConfig",
           "Settings", "StorageConfig", "StoreConfig", "SystemSpec", "Target"]
