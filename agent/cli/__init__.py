"""`marquee` console script. Each area registers its commands from its own module, so adding a
command touches one file; heavy libraries are imported inside the commands (fast start-up)."""
from __future__ import annotations

import importlib

import typer

app = typer.Typer(name="marquee", no_args_is_help=True, add_completion=False,
                  help="Marquee: a conversational recommender (MovieLens-100k by default, offline).")

COMMAND_MODULES = (
    "agent.cli.catalog",  # index, doctor, bench
    "agent.cli.search",  # search
    "agent.cli.conversation",  # chat, ask, eval-chat
    "agent.cli.web",  # serve
    "agent.cli.llm",  # enrich
    "finetune.cli",  # eval
    "finetune.training.cli",  # finetune
)


def build() -> typer.Typer:
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(app)
    return app


def main() -> None:
    build()()
