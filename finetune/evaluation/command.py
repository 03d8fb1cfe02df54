"""What every `marquee eval` variant does before it runs: the settings with the command's flags (checked like
the rest of the settings), the catalog, and the default output folder; a bad value ends the command with exit
code 2 and the message (finetune/cli.py, finetune/evaluation/conversational/cli.py)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer


def load_inputs(console, name: str, config: Path | None, eval_overrides: dict[str, Any] | None,
                check: Callable[[Any], None]) -> tuple[Any, Any]:
    """(settings, dataset) for command `name`; `check(settings)` raises ValueError for what the schema cannot."""
    from rich.markup import escape

    from retrieval.catalog import CatalogError, load_dataset
    from retrieval.config import Settings

    try:
        settings = Settings.load(config, source="command line", eval=eval_overrides or None)
        check(settings)
    except (ValueError, FileNotFoundError) as exc:
        console.print(f"[red]{name}: {escape(str(exc))}[/red]", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    try:
        dataset = load_dataset(settings.catalog, settings.data_dir)
    except CatalogError as exc:
        console.print(f"[red]{name}: cannot load the catalog: {escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    return settings, dataset


def default_out(home: Path, suffix: str = "") -> Path:
    """<home>/eval/<UTC timestamp><suffix>: one folder per run."""
    return Path(home) / "eval" / (dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S") + suffix)
