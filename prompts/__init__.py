"""Prompt templates as files, loaded by name: `load("rerank")` reads prompts/rerank.txt.

Templates use str.format fields; the file's first line may be a `# version: N` comment, which is
stripped and exposed so that adapters can record which prompt version they were trained on.
Tables of wording (reply strings per language, explanation frames) are TOML files: `load_table("reply_zh")`.
"""
from __future__ import annotations

import importlib.resources
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PROMPT_DIR = Path(str(importlib.resources.files(__name__)))  # the templates are package data


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    text: str

    def format(self, **fields) -> str:
        return self.text.format(**fields)


def _file(name: str, suffix: str, kind: str):
    """prompts/NAME.SUFFIX, or FileNotFoundError naming the ones there are."""
    path = PROMPT_DIR / f"{name}{suffix}"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROMPT_DIR.glob(f"*{suffix}")))
        raise FileNotFoundError(f"no {kind} named {name!r} in {PROMPT_DIR} (known: {known})")
    return path


@lru_cache(maxsize=None)
def load(name: str) -> Prompt:
    raw = _file(name, ".txt", "prompt").read_text(encoding="utf-8")
    version = "1"
    first, _, rest = raw.partition("\n")
    if first.startswith("# version:"):
        version, raw = first.split(":", 1)[1].strip(), rest
    return Prompt(name=name, version=version, text=raw.rstrip("\n"))


@lru_cache(maxsize=None)
def load_table(name: str) -> dict:
    """prompts/NAME.toml as a dict (wording that is data: reply strings per language, explanation frames)."""
    return tomllib.loads(_file(name, ".toml", "table").read_text(encoding="utf-8"))
