"""`marquee` console script. The agent's own commands register from their modules here; other packages'
commands (`eval`, `finetune` from finetune, `bench` from benchmarks) join through the entry-point group
`marquee.commands` (pyproject.toml), so agent never imports them. Heavy libraries are imported inside the
commands (fast start-up).
"""
from __future__ import annotations

import importlib
import importlib.metadata
import logging
import sys
from typing import Annotated

import typer

PLUGIN_GROUP = "marquee.commands"  # entry point NAME = "package.module:register"; NAME is the command it adds
OUR_PACKAGES = ("agent", "retrieval", "finetune", "benchmarks", "prompts")  # loggers that --verbose opens

# rich_markup_mode=None: help text is shown as written, so "[eval]" stays "[eval]" (no Rich markup parsing).
app = typer.Typer(name="marquee", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  help="Marquee: a conversational recommender (MovieLens-100k by default, offline).")

COMMAND_MODULES = (
    "agent.cli.catalog",  # index, doctor
    "agent.cli.search",  # search
    "agent.cli.conversation",  # chat, ask, eval-chat
    "agent.cli.web",  # serve
    "agent.cli.llm",  # enrich
)


def installed_version() -> str:
    try:
        return importlib.metadata.version("marquee")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed: run make setup)"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"marquee {installed_version()}")
        raise typer.Exit()


def configure_logging(verbosity: int) -> None:
    """-v: INFO from Marquee's own packages; -vv: DEBUG from them. Other libraries stay at WARNING."""
    if verbosity <= 0:
        return
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for name in OUR_PACKAGES:
        logging.getLogger(name).setLevel(logging.INFO if verbosity == 1 else logging.DEBUG)
    logging.getLogger(__name__).info("marquee %s, Python %s, arguments: %s", installed_version(),
                                     sys.version.split()[0], " ".join(sys.argv[1:]))


@app.callback()
def options(
    version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                          help="print the installed version and exit")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                         help="log progress to stderr (-v: info, -vv: debug)", show_default=False)] = 0,
) -> None:
    configure_logging(verbose)


def _unavailable(name: str, target: str, exc: BaseException):
    """A stand-in for a plugin command that failed to load: says why and how to fix it, exit code 2."""
    def command(args: Annotated[list[str] | None, typer.Argument(hidden=True)] = None) -> None:
        typer.secho(f"error: the `marquee {name}` command could not be loaded from {target} "
                    f"({exc.__class__.__name__}: {exc}). Fix: reinstall Marquee (make setup, or "
                    "pip install -c constraints.txt --force-reinstall <the marquee wheel>)",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(2)

    command.__doc__ = f"(unavailable: its plugin {target} failed to load; run it to see why)"
    return command


def plugin_entry_points() -> list[importlib.metadata.EntryPoint]:
    """The `marquee.commands` entry points, one per name (the first wins if two distributions declare it)."""
    unique: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=PLUGIN_GROUP):
        unique.setdefault(ep.name, ep)
    return [unique[name] for name in sorted(unique)]


def register_plugins(target: typer.Typer) -> list[str]:
    """Register every plugin's commands; a plugin that fails to import or register becomes a command that
    explains the failure (the rest of the CLI keeps working). Returns the names that failed."""
    failed = []
    for ep in plugin_entry_points():
        try:
            ep.load()(target)
        except Exception as exc:  # any broken plugin: report it on use, never crash `marquee`
            logging.getLogger(__name__).debug("plugin %s (%s) failed", ep.name, ep.value, exc_info=True)
            target.command(ep.name, context_settings={"ignore_unknown_options": True,
                                                      "allow_extra_args": True})(_unavailable(ep.name, ep.value, exc))
            failed.append(ep.name)
    return failed


def build() -> typer.Typer:
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(app)
    register_plugins(app)
    return app


def main() -> None:
    build()()
