"""`marquee eval --conversational`: the command's body (the flags live with `marquee eval` in finetune/cli.py).

    marquee eval --conversational --users 200 --types vague,genre,genre-decade,loved,genre-zh --seed 0
    marquee eval --conversational --stage validation      # tune here; report on test (the default)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


def run_command(console, config_path: Path | None, command: str, users: int | None, types: str | None,
                seed: int | None, out: Path | None, stage: str | None = None) -> None:
    from rich.markdown import Markdown

    from finetune.evaluation.command import default_out, load_inputs
    from finetune.evaluation.conversational.runner import check_systems

    kinds = [t.strip() for t in types.split(",")] if types is not None else None
    flags = {k: v for k, v in {"users": users, "types": kinds, "seed": seed, "stage": stage}.items() if v is not None}
    # the flags override [eval.conversational], checked like the rest of the settings
    settings, dataset = load_inputs(console, "marquee eval --conversational", config_path,
                                    {"conversational": flags} if flags else None,
                                    check=lambda s: check_systems(s.eval.conversational))
    cfg = settings.eval.conversational
    out = out or default_out(settings.data_dir, "-conversational")
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
