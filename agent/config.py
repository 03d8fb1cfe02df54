"""One typed settings object: defaults → marquee.toml → MARQUEE_* env → explicit overrides (CLI flags).

Nested sections use `__` in env names: MARQUEE_LLM__MODEL=..., MARQUEE_CANDIDATES__COUNT=30.
MARQUEE_HOME and MARQUEE_CHROMA_URL are top-level.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal

import platformdirs
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from retrieval.config import CandidateConfig, CatalogConfig, EmbeddingConfig, StoreConfig


class LLMConfig(BaseModel):
    model: str = Field("smollm2-135m", description="'smollm2-135m' (embedded GGUF) or any HF model path / id")
    adapter: str | None = Field("default", description="'default' (shipped LoRA), 'none', or a path")
    device: str = "auto"
    dtype: str = Field("auto", description="auto | float32 | bfloat16 | float16")
    endpoint: str | None = Field(None, description="OpenAI-compatible base URL (e.g. vLLM); local model when unset")
    endpoint_model: str | None = None
    # reranker (agent.llm.reranker)
    scorer: Literal["listwise", "segments"] | None = Field(None, description="'listwise' (label tokens) or "
                                                            "'segments' (Yes/No per candidate); unset = the adapter's")
    fusion_weight: float | None = Field(None, description="w in retriever + w × LLM log-prob; unset = the "
                                        "adapter's marquee.json value, else 0.1; 0 = retriever order")
    permutations: int = Field(1, ge=1, description="candidate orders averaged per prompt (position-bias control)")
    calibrate: bool = Field(True, description="subtract the label prior of a content-free prompt")
    max_candidates: int = Field(20, ge=1, le=26, description="candidates per prompt (one label token each)")
    history_items: int = Field(10, ge=0, description="history titles shown per list in the prompt")
    batch_size: int = Field(8, ge=1, description="prompts per forward pass / generation batch")
    # explanations and descriptions (agent.llm.explainer / describe)
    explain_max_new_tokens: int = Field(36, ge=8)
    explain_max_chars: int = Field(280, ge=40, description="longer explanations fall back to the template")


class AgentConfig(BaseModel):
    """The conversation layer (agent.core / agent.planner)."""

    default_count: int = Field(5, ge=1, le=20, description="picks per reply unless the user asks for another number")
    max_count: int = Field(10, ge=1, le=20, description="most picks one reply may show")
    pool: int = Field(20, ge=5, le=100, description="retrieved candidates per turn (the reranker's input)")
    rerank: bool = Field(True, description="rerank candidates with the LLM (agent.llm) when it can be loaded")
    explain: Literal["template", "llm"] = Field("template", description="'template' (fact-based, instant) or 'llm' (grounded LLM text, "
                         "template fallback; ~seconds per reply on CPU, use with a GPU or an endpoint)")
    expand_query: bool = Field(False, description="let the LLM write a richer query before semantic retrieval")
    exclude_shown: bool = Field(True, description="never show an item twice in one session (unless nothing else is left)")
    title_threshold: float = Field(85.0, ge=50, le=100, description="fuzzy score a title mention needs (0-100)")
    mode: Literal["planner", "tools"] = Field("planner", description="'planner' (deterministic, default) or 'tools' (chat model calls tools)")
    chat_model: str | None = Field(None, description="tool-calling chat model for mode='tools', e.g. "
                                   "'openai:gpt-4o-mini' (init_chat_model spec); base URL from chat_base_url")
    chat_base_url: str | None = Field(None, description="OpenAI-compatible endpoint for chat_model")
    chat_api_key_env: str = Field("OPENAI_API_KEY", description="env var holding the chat model's API key")


class ServerConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = 7860
    concurrency: int = 4
    auth: str | None = Field(None, description="'user:password' enables basic auth")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MARQUEE_", env_nested_delimiter="__", extra="ignore")
    _toml_path: ClassVar[Path | None] = None

    home: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("marquee")))
    chroma_url: str | None = None
    catalog: CatalogConfig = CatalogConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    store: StoreConfig = StoreConfig()
    candidates: CandidateConfig = CandidateConfig()
    llm: LLMConfig = LLMConfig()
    server: ServerConfig = ServerConfig()
    agent: AgentConfig = AgentConfig()
    # Sections of later layers (finetune, eval, agent) are free-form until they define models here.
    sections: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls._toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls._toml_path))
        return tuple(sources)

    @classmethod
    def load(cls, config: str | Path | None = None, **overrides: Any) -> "Settings":
        """Build settings; `config` is a marquee.toml path (default: $MARQUEE_CONFIG or ./marquee.toml)."""
        path = Path(config) if config else Path(os.environ.get("MARQUEE_CONFIG", "marquee.toml"))
        if config and not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        cls._toml_path = path if path.is_file() else None
        try:
            settings = cls(**{k: v for k, v in overrides.items() if v is not None})
        finally:
            cls._toml_path = None
        if settings.chroma_url and not settings.store.chroma_url:
            settings.store.chroma_url = settings.chroma_url
        return settings

    @property
    def data_dir(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home
