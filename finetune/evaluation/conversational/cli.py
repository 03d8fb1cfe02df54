"""`marquee eval --conversational`: the command's body (the flags live with `marquee eval` in finetune/cli.py).

    marquee eval --conversational --users 200 --types vague,genre,genre-decade,loved,genre-zh --seed 0
    marquee eval --conversational --stage validation      # tune here; report on test (the default)
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import typer



def run_command(console, config_path: Path | None, command: str, users: int | None, types: str | None,
                seed: int | None, out: Path | None, stage: str | None = None) -> None:
    from rich.markdown import Markdown
    from rich.markup import escape

    from finetune.evaluation.conversational.runner import check_systems
    from retrieval.config import Settings

    kinds = [t.strip() for t in types.split(",")] if types is not None else None
    flags = {k: v for k, v in {"users": users, "types": kinds, "seed": seed, "stage": stage}.items() if v is not None}
    try:  # the flags override [eval.conversational], checked like the rest of the settings
        settings = Settings.load(config_path, source="command line", eval={"conversational": flags} if flags else None)
        cfg = settings.eval.conversational
        check_systems(cfg)
    except (ValueError, FileNotFoundError) as exc:
        console.print(f"[red]marquee eval --conversational: {escape(str(exc))}[/red]", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None

    from retrieval.catalog import CatalogError, load_dataset

    home = settings.data_dir
    try:
        dataset = load_dataset(settings.catalog, home)
    except CatalogError as exc:
        console.print(f"[red]marquee eval --conversational: cannot load the catalog: {exc}[/red]")
        raise typer.Exit(2) from None
    out = out or home / "eval" / (dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S") + "-conversational")
    report, paths = _run(cfg, dataset, settings, out, command, console)

    from finetune.evaluation.conversational.report import ndcg_table, target_table

    console.print(Markdown("\n".join(["NDCG@5 by request type", "", *ndcg_table(report)])))
    if report["targets"]:
        console.print(Markdown("\n".join(target_table(report))))
    console.print(f"{report['meta']['n_requests']} requests, {report['meta']['wall_s']:.0f} s\n"
                  f"full tables (HR@5, constraint satisfaction, CIs, skips): {paths['markdown']}\n"
                  f"json: {paths['json']}\nper request: {paths['per_user']}")


def _run(cfg, dataset, settings, out, command, console) -> tuple[dict[str, Any], dict[str, Path]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from finetune.evaluation.conversational.runner import run_conversational

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        tasks: dict[str, int] = {}

        def on_progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(f"{name:>20}", total=total)
            progress.update(tasks[name], completed=done)

        return run_conversational(cfg, dataset, settings, out=out, command=command,
                                  log=lambda msg: progress.console.print(msg), progress=on_progress)
