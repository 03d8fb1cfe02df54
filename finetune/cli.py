"""`marquee eval`: every ranker on the docs/ARCHITECTURE.md §6 protocol, as tables, JSON and a bar chart.

    marquee eval                                   # all users, every configured ranker
    marquee eval --users 100 --rankers mostpop,ease,sasrec --out /tmp/eval
    marquee eval --conversational --users 200       # the whole chat turn, request-conditioned
    marquee eval --conversational --stage validation  # ... on the validation targets (tuning)
"""
from __future__ import annotations

import enum
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer


class Stage(str, enum.Enum):
    test = "test"
    validation = "validation"  # for tuning: never tune on test


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_command(
        users: Annotated[int | None, typer.Option(help="evaluate a seeded sample of N users (0 = all)")] = None,
        rankers: Annotated[str | None, typer.Option(help="comma-separated ranker names (default: [eval] rankers)")] = None,
        out: Annotated[Path | None, typer.Option(help="output folder (default: <home>/eval/<timestamp>)")] = None,
        seed: Annotated[int | None, typer.Option(help="seed of user sampling, negatives and models")] = None,
        stage: Annotated[Stage | None, typer.Option(help="split to score (default: [eval] stage, test)")] = None,
        config: Annotated[Path | None, typer.Option(help="marquee.toml (its [eval] section; default: "
                                                    "$MARQUEE_CONFIG or ./marquee.toml)")] = None,
        conversational: Annotated[bool, typer.Option(
            "--conversational", help="the request-conditioned benchmark of the whole chat turn "
            "(rows in the eval.conversational table; chat vs MostPop / SASRec+EASE, with and without an oracle filter)")] = False,
        types: Annotated[str | None, typer.Option(
            help="--conversational: comma-separated request types (vague,genre,genre-decade,loved,genre-zh)")] = None,
    ) -> None:
        """Evaluate rankers (Random, MostPop, ItemKNN, EASE, SASRec, semantic, hybrid, LLM…) on leave-one-out."""
        from rich.console import Console
        from rich.markdown import Markdown

        from finetune.evaluation.command import default_out, load_inputs
        from finetune.evaluation.rankers import check_ranker_names

        console = Console()
        stage = stage.value if stage is not None else None
        command = "marquee " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        if types is not None and not conversational:
            console.print("[red]marquee eval: --types needs --conversational[/red]")
            raise typer.Exit(2)
        if conversational:
            if rankers is not None:
                console.print("[red]marquee eval: --rankers does not apply to --conversational "
                              "(its systems are listed in \\[eval.conversational])[/red]")
                raise typer.Exit(2)
            from finetune.evaluation.conversational.cli import run_command

            run_command(console, config, command, users=users, types=types, seed=seed, out=out, stage=stage)
            return
        names = [r.strip() for r in rankers.split(",")] if rankers is not None else None
        settings, dataset = load_inputs(console, "marquee eval", config,
                                        {"users": users, "rankers": names, "seed": seed, "stage": stage},
                                        check=lambda s: check_ranker_names(s.eval))
        cfg, home = settings.eval, settings.data_dir
        out = out or default_out(home)
        report, results, paths = _run(cfg, dataset, home, out, settings, command, console)

        from finetune.evaluation.report import accuracy_table

        console.print(Markdown("\n".join(accuracy_table(report, compact=True))))
        for check in report["checks"]:
            colour = {"PASS": "green", "FAIL": "red"}.get(check["status"], "yellow")
            console.print(f"[{colour}]{check['status']}[/{colour}] {check['name']}"
                          + (f": {check['value']:.4f}" if check.get("value") is not None else ""))
        for message in report["skipped"]:
            console.print(f"[bold red]{message}[/bold red]")
        console.print(f"full tables (all metrics, beyond-accuracy, validity, published context): {paths['markdown']}\n"
                      f"json: {paths['json']}\nchart: {paths['png']}"
                      + (f"\ntrade-off chart (variants): {paths['tradeoff']}" if "tradeoff" in paths else ""))
        failed = any(r.status == "failed" for r in results) or any(c["status"] == "FAIL" for c in report["checks"])
        if failed:
            raise typer.Exit(1)


def _run(cfg, dataset, home, out, settings, command, console):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from finetune.evaluation.runner import run_evaluation

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        tasks: dict[str, int] = {}

        def on_progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(f"{name:>16}", total=total)
            progress.update(tasks[name], completed=done)

        return run_evaluation(cfg, dataset, home, out=out, settings=settings, command=command,
                              log=lambda msg: progress.console.print(msg), progress=on_progress)


if __name__ == "__main__":  # `python -m finetune.cli eval …` where the `marquee` command is not installed (GPU box)
    standalone = typer.Typer(add_completion=False, rich_markup_mode=None)
    register(standalone)

    @standalone.callback()
    def _root() -> None:
        """Marquee evaluation."""

    standalone()
