"""Reading one `[section]` of a marquee.toml, with the same errors for every finetune/eval config."""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


def read_toml_section(path: str | Path | None, name: str) -> dict[str, Any]:
    """The `[name]` table of `path` ({} when path is None or the table is absent)."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        return dict(tomllib.loads(path.read_text(encoding="utf-8")).get(name, {}))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None
