"""`marquee finetune`: train a LoRA adapter (CPU here; `accelerate launch` on GPUs). What is trained is a task of
finetune/training/tasks/ (its TASKS table): `rerank` (default) or `explain`.

    marquee finetune --quick                         # tiny slice, a minute or two (CI)
    marquee finetune --task explain --ship-to agent/llm/adapters/explain   # the explainer (rejection sampling)
    marquee finetune --max-minutes 55                # ML-100k train split → <home>/adapters/finetune
    marquee finetune --resume                        # continue from the last checkpoint of --out
    marquee finetune --ship                          # and make it the default adapter (<home>/adapters/default/)
    marquee finetune --ship-to agent/llm/adapters/default   # in a checkout: update the adapter the repo ships
    accelerate launch --multi_gpu --num_processes 4 -m finetune.training.cli --out runs/gpu   # 4 GPUs, same script
"""
from __future__ import annotations

import enum
import importlib.util
import os
import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer


class Scorer(str, enum.Enum):
    segments = "segments"  # Yes/No per candidate, all candidates in one block-masked pass
    listwise = "listwise"  # label tokens over the candidate list
    head = "head"  # a trained head over the LLM's title embeddings (two towers)


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"marquee finetune: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def finetune(
    quick: Annotated[bool, typer.Option("--quick", help="tiny slice (few users, few steps) for CI")] = False,
    task: Annotated[Optional[str], typer.Option(help="what to train: rerank (the reranker's adapter) or explain "
                                                "(the explainer's, by rejection sampling); default: [finetune] task")] = None,
    out: Annotated[Optional[Path], typer.Option(help="output folder (default: <home>/adapters/finetune for rerank, "
                                                "<home>/adapters/explain-run for explain; *-quick / quick with --quick)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue from the latest checkpoint in --out")] = False,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="marquee.toml (its [finetune] "
                                                   "section; default: $MARQUEE_CONFIG or ./marquee.toml)")] = None,
    max_minutes: Annotated[Optional[float], typer.Option(help="wall-clock budget of the whole run")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="rerank: optimizer steps (overrides epochs)")] = None,
    retriever: Annotated[Optional[str], typer.Option(help="rerank: base retriever (an eval ranker name, e.g. "
                                                     "sasrec)")] = None,
    scorer: Annotated[Optional[Scorer], typer.Option(help="rerank: segments (Yes/No per candidate), listwise "
                                                      "(label tokens) or head (trained head over title "
                                                      "embeddings); default: [finetune] scorer")] = None,
    ship: Annotated[bool, typer.Option("--ship", help="make the result the adapter this home serves: copy it to "
                                       "<home>/adapters/default/ (rerank) or <home>/adapters/explain/ (explain)")] = False,
    ship_to: Annotated[Optional[Path], typer.Option("--ship-to", help="copy the result to this folder instead, e.g. "
                                                    "agent/llm/adapters/default in a source checkout")] = None,
    data_only: Annotated[bool, typer.Option("--data-only", help="rerank: only fit the retrievers / teachers (cached "
                                            "under MARQUEE_HOME) and build the examples, then stop")] = False,
) -> None:
    """Train a LoRA adapter on the train split (the reranker's, or the explainer's with --task explain); writes
    adapter, marquee.json, model card, training curve."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if importlib.util.find_spec("accelerate") is None:
        _fail("training needs the train extra (accelerate). Fix: pip install -c constraints.txt 'marquee[train]'"
              "   (in a checkout: make setup)")
    from agent.llm.loading import ModelNotAvailable
    from finetune.training.config import load_finetune_settings
    from finetune.training.tasks import create_task

    scorer = scorer.value if scorer is not None else None
    try:
        settings = load_finetune_settings(config, quick=quick, max_minutes=max_minutes, max_steps=max_steps,
                                          retriever=retriever, scorer=scorer, task=task)
        job = create_task(settings.finetune.task)
        job.check(settings)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    from retrieval.catalog import CatalogError, load_dataset

    home = settings.data_dir
    try:
        dataset = load_dataset(settings.catalog, home)
    except CatalogError as exc:
        _fail(f"cannot load the catalog: {exc}")
    command_out = out
    out = out or job.default_out(home, quick)
    command = _command_line(quick=quick, task=task, out=command_out, resume=resume, config=config,
                            max_minutes=max_minutes, max_steps=max_steps, retriever=retriever, scorer=scorer,
                            ship=ship, ship_to=ship_to, data_only=data_only)
    from finetune.training.trainer import ship as ship_adapter

    try:
        summary = job.run(settings, dataset, home, out, resume=resume, command=command,
                          log=lambda m: typer.echo(m, err=True), data_only=data_only)
    except (ModelNotAvailable, ValueError) as exc:
        _fail(str(exc))
    typer.echo("\n".join(summary))
    if data_only:
        return
    if ship or ship_to is not None:
        from agent.llm.loading import home_adapter_dir

        dest = ship_to if ship_to is not None else home_adapter_dir(home, job.slot)
        for copied in ship_adapter(out, dest, job.shipped_files):
            typer.echo(f"shipped {copied} ({copied.stat().st_size / 1e6:.1f} MB)")


def _command_line(**options) -> str:
    """The command as the user could retype it (for the model card), from the options actually given."""
    parts = ["marquee", "finetune"]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            parts.append(flag)
        elif value not in (None, False):
            parts += [flag, shlex.quote(str(value))]
    return " ".join(parts)


def register(app: typer.Typer) -> None:
    app.command("finetune")(finetune)


if __name__ == "__main__":  # `accelerate launch -m finetune.training.cli …`
    standalone = typer.Typer(add_completion=False, rich_markup_mode=None)  # help shows "[finetune]" as written
    standalone.command()(finetune)
    standalone()
