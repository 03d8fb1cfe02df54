"""One typed settings object: defaults → marquee.toml → MARQUEE_* env → explicit overrides (CLI flags).

    settings = Settings.load()                        # ./marquee.toml, or $MARQUEE_CONFIG, when it exists
    settings = Settings.load("configs/ablation.toml", source="command line", eval={"users": 300})

Nested sections use `__` in env names: MARQUEE_LLM__MODEL=..., MARQUEE_CANDIDATES__COUNT=30,
MARQUEE_EVAL__PARAMS__EASE__L2=300 (values of free-form tables such as [eval.params] are read as JSON when
they parse, else as text). MARQUEE_HOME and MARQUEE_CHROMA_URL are top-level.

Strict everywhere: an unknown section or key, in the file, in a `MARQUEE_SECTION__KEY` variable or in the
overrides, is a `ConfigError` that names where it came from and the closest valid name. A bare MARQUEE_NAME
that is no setting is left alone: that namespace is shared (MARQUEE_CONFIG, test and benchmark switches),
while the `__` form is this object's own syntax, so a typo there can only be a mistaken override.
"""
from __future__ import annotations

import contextvars
import difflib
import json
import os
import re
import tomllib
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import (BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict,
                               SettingsError)

from retrieval.config.eval import EvalConfig
from retrieval.config.finetune import FinetuneConfig
from retrieval.config.sections import (AgentConfig, CandidateConfig, CatalogConfig, EmbeddingConfig, LLMConfig,
                                       ServerConfig, StorageConfig, StoreConfig)

ENV_PREFIX = "MARQUEE_"
ENV_NESTED = "__"
CONFIG_ENV = "MARQUEE_CONFIG"  # the marquee.toml to read when no path is given
DEFAULT_CONFIG = "marquee.toml"

_LOADING = contextvars.ContextVar("marquee_settings_loading", default=False)


class ConfigError(ValueError):
    """A configuration problem, stated with its origin (file, environment variable or flags), section and key."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED, extra="forbid")

    home: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("marquee")))
    chroma_url: str | None = None
    catalog: CatalogConfig = CatalogConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    store: StoreConfig = StoreConfig()
    candidates: CandidateConfig = CandidateConfig()
    llm: LLMConfig = LLMConfig()
    agent: AgentConfig = AgentConfig()
    server: ServerConfig = ServerConfig()
    storage: StorageConfig = StorageConfig()
    eval: EvalConfig = EvalConfig()
    finetune: FinetuneConfig = FinetuneConfig()

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        # `load` merges the layers itself (it must know where each value came from to report errors)
        return (init_settings,) if _LOADING.get() else (init_settings, env_settings)

    @classmethod
    def load(cls, config: str | Path | None = None, *, source: str = "overrides", **overrides: Any) -> "Settings":
        """Build settings; `config` is a marquee.toml path (default: $MARQUEE_CONFIG or ./marquee.toml, when it
        exists). `overrides` are settings fields (None = not given, also inside a section's dict), e.g.
        `eval={"users": 7}`; `source` names them in error messages (e.g. "command line")."""
        path = config_path(config)
        layers = [(str(path), read_toml(path)) if path is not None else None,
                  ("environment", environment_values(cls)),
                  (source, _without_none(overrides))]
        layers = [layer for layer in layers if layer is not None]
        problems = [f"{where}: {problem}" for where, data in layers if where != "environment"
                    for problem in unknown_keys(data, cls)]
        problems += environment_problems(cls)
        if problems:
            raise ConfigError("\n".join(problems))
        merged: dict[str, Any] = {}
        for _, data in layers:
            merged = _deep_merge(merged, data)
        token = _LOADING.set(True)
        try:
            settings = cls(**merged)
        except ValidationError as exc:
            raise ConfigError("\n".join(describe_errors(exc, cls, layers))) from None
        finally:
            _LOADING.reset(token)
        if settings.chroma_url and not settings.store.chroma_url:
            settings.store.chroma_url = settings.chroma_url
        return settings

    @property
    def data_dir(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home


# ------------------------------------------------------------------------------------------- the layers
def config_path(config: str | Path | None) -> Path | None:
    """The marquee.toml to read: `config` (must exist), else $MARQUEE_CONFIG or ./marquee.toml when present."""
    if config:
        path = Path(config)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path}")
        return path
    path = Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)
    return path if path.is_file() else None


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text: {exc}") from None


def environment_values(settings_cls: type[Settings]) -> dict[str, Any]:
    """MARQUEE_* variables as nested settings values (pydantic-settings' own reader and JSON parsing)."""
    try:
        values = EnvSettingsSource(settings_cls)()
    except SettingsError as exc:  # a list or table value that is not JSON; say which variables to look at
        field = re.search(r'field "(\w+)"', str(exc))
        where = _env_names((field.group(1),)) if field else "environment"
        raise ConfigError(f"{where}: a list or table value must be JSON, e.g. "
                          f"MARQUEE_EVAL__RANKERS='[\"mostpop\", \"ease\"]' ({exc})") from None
    return _decode_free_form(values, settings_cls)


def _env_variables() -> Iterator[tuple[str, list[str]]]:
    """(name, lower-case path) of every MARQUEE_SECTION__KEY… variable."""
    for name in os.environ:
        if name.upper().startswith(ENV_PREFIX) and ENV_NESTED in name[len(ENV_PREFIX):]:
            yield name, name[len(ENV_PREFIX):].lower().split(ENV_NESTED)


def environment_problems(settings_cls: type[BaseModel]) -> list[str]:
    problems = []
    for name, parts in _env_variables():
        model, where = settings_cls, []
        for depth, part in enumerate(parts):
            fields = model.model_fields
            if part not in fields:
                what = f"unknown section [{part}]" if not where else f"unknown key '{part}' in [{'.'.join(where)}]"
                close = difflib.get_close_matches(part, list(fields), n=1, cutoff=0.6)
                if close:  # the whole variable as it should read
                    fixed = ENV_PREFIX + ENV_NESTED.join([*where, close[0], *parts[depth + 1:]]).upper()
                    hint = f"; did you mean {fixed}?"
                else:
                    hint = f"; valid: {', '.join(fields)}"
                problems.append(f"environment variable {name}: {what}{hint}")
                break
            model = _section_model(fields[part])
            if model is None:  # a value or a free-form table: pydantic validates the rest
                break
            where.append(part)
    return problems


def _deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _without_none(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Flags not given arrive as None, at the top level or inside a section's dict."""
    out = {}
    for key, value in overrides.items():
        if isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if v is not None} or None  # no flag of that section given
        if value is not None:
            out[key] = value
    return out


# --------------------------------------------------------------------------------------- the checking
def _section_model(field) -> type[BaseModel] | None:
    annotation = field.annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _suggestion(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; valid: {', '.join(repr(c) for c in choices)}"


def unknown_keys(data: Mapping[str, Any], model: type[BaseModel], where: tuple[str, ...] = ()) -> list[str]:
    """A message per key of `data` that `model` (and its section models) does not define."""
    problems = []
    fields = model.model_fields
    for key, value in data.items():
        if key not in fields:
            if not where and isinstance(value, Mapping):
                sections = [f for f, info in fields.items() if _section_model(info) is not None]
                close = difflib.get_close_matches(key, sections, n=1, cutoff=0.6)
                hint = f"; did you mean [{close[0]}]?" if close else f"; valid: {', '.join(f'[{s}]' for s in sections)}"
                problems.append(f"unknown section [{key}]{hint}")
            elif not where:
                problems.append(f"unknown top-level key '{key}'{_suggestion(key, list(fields))}")
            else:
                problems.append(f"unknown key '{key}' in [{'.'.join(where)}]{_suggestion(key, list(fields))}")
            continue
        section = _section_model(fields[key])
        if section is not None and isinstance(value, Mapping):
            problems += unknown_keys(value, section, (*where, key))
    return problems


def _contains(data: Any, loc: tuple) -> bool:
    for part in loc:
        if not isinstance(data, Mapping) or part not in data:
            return False
        data = data[part]
    return True


def _split_loc(loc: tuple, settings_cls: type[BaseModel]) -> tuple[tuple[str, ...], tuple]:
    """(section path, key path) of an error location: ("eval", "ks", 0) → (("eval",), ("ks", 0))."""
    model, section = settings_cls, []
    for i, part in enumerate(loc):
        info = model.model_fields.get(part) if isinstance(part, str) else None
        sub = _section_model(info) if info is not None else None
        if sub is None:
            return tuple(section), tuple(loc[i:])
        model = sub
        section.append(part)
    return tuple(section), ()


def _origins(loc: tuple, layers: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Which layers set the value at `loc`: the highest one that sets it, or all that touch a section."""
    for where, data in reversed(layers):  # the highest-priority layer decides a single value
        if loc and _contains(data, loc) and not isinstance(_value(data, loc), Mapping):
            return [_env_names(loc) if where == "environment" else where]
    touching = [where for where, data in layers if _contains(data, loc)]
    return [_env_names(loc) if w == "environment" else w for w in touching] or ["defaults"]


def _value(data: Mapping, loc: tuple) -> Any:
    for part in loc:
        data = data[part]
    return data


def _env_names(loc: tuple) -> str:
    path = [str(p).lower() for p in loc]
    names = [name for name, parts in _env_variables() if parts[:len(path)] == path or path[:len(parts)] == parts]
    names += [n for n in os.environ if n.upper() == ENV_PREFIX + str(loc[0]).upper()] if loc else []
    return "environment variable " + ", ".join(sorted(set(names))) if names else "environment"


def describe_errors(exc: ValidationError, settings_cls: type[BaseModel],
                    layers: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """pydantic's errors as 'origin: [section] key: what is wrong (got value)'."""
    lines = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        section, key = _split_loc(loc, settings_cls)
        message = error["msg"].removeprefix("Value error, ")
        place = f"[{'.'.join(section)}]" if section else ""
        if error["type"] == "extra_forbidden" and len(key) == 1:  # e.g. a JSON-valued MARQUEE_CANDIDATES
            model = settings_cls
            for part in section:
                model = _section_model(model.model_fields[part])
            hint = _suggestion(str(key[0]), list(model.model_fields))
            lines.append(f"{', '.join(_origins(loc, layers))}: unknown key '{key[0]}' in {place or 'the top level'}{hint}")
            continue
        if key:
            place = f"{place} {'.'.join(str(k) for k in key)}".strip()
            if "got " not in message:
                message += f" (got {error['input']!r})"
        lines.append(f"{', '.join(_origins(loc, layers))}: {place}: {message}")
    return lines


def _mentions_any(annotation: Any) -> bool:
    return annotation is Any or any(_mentions_any(arg) for arg in typing.get_args(annotation))


def _decode_free_form(values: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """Env values are text; inside free-form tables (typed Any) read them as JSON when they parse."""
    out = dict(values)
    for key, value in values.items():
        info = model.model_fields.get(key)
        if info is None:
            continue
        section = _section_model(info)
        if section is not None and isinstance(value, Mapping):
            out[key] = _decode_free_form(dict(value), section)
        elif _mentions_any(info.annotation):
            out[key] = _decode_leaves(value)
    return out


def _decode_leaves(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _decode_leaves(v) for k, v in value.items()}
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
