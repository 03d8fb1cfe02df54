"""One typed settings object: defaults → marquee.toml → MARQUEE_* env → explicit overrides (CLI flags).

Nested sections use `__` in env names: MARQUEE_LLM__MODEL=..., MARQUEE_CANDIDATES__COUNT=30.
MARQUEE_HOME and MARQUEE_CHROMA_URL are top-level.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

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
