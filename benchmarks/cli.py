"""`marquee bench NAME`: run one benchmark and record its figures (joins `marquee` through the
`marquee.commands` entry point, see pyproject.toml).

    marquee bench index --quick                    # → benchmarks/results/index.json in a checkout
    marquee bench query --out /tmp/bench           # → /tmp/bench/query.json + /tmp/bench/RESULTS.md
    marquee bench soak --minutes 5                 # 10 users against `marquee serve`: errors, RSS growth
    python -m benchmarks.turn --quick              # the same, without the marquee CLI
"""
from __future__ import annotations

import enum
import importlib
import json
from pathlib import Path
from typing import Annotated, Optional

import typer


class Benchmark(str, enum.Enum):
    """One module per benchmark in benchmarks/, each with `run(quick) -> dict` and optional TARGETS."""

    index = "index"
    query = "query"
    hybrid = "hybrid"
    llm = "llm"
    turn = "turn"
    web = "web"
    soak = "soak"
    badinput = "badinput"
    cluster = "cluster"


TIMED = {"soak"}  # benchmarks whose `run` takes `minutes`


def run_benchmark(name: str, quick: bool = False, out: Path | None = None,
                  minutes: float | None = None) -> tuple[dict, Path]:
    """Run benchmarks/NAME.py and record its figures; returns (figures, results file)."""
    from benchmarks.harness import record

    module = importlib.import_module(f"benchmarks.{name}")
    figures = module.run(quick=quick, minutes=minutes) if name in TIMED else module.run(quick=quick)
    return figures, record(name, figures, getattr(module, "TARGETS", None), out=out)


def bench(name: Annotated[Benchmark, typer.Argument(help="which benchmark", case_sensitive=False)],
          quick: Annotated[bool, typer.Option("--quick", help="smaller, faster variant")] = False,
          out: Annotated[Optional[Path], typer.Option("--out", help="results folder (default: benchmarks/results/ "
                                                      "in a source checkout, else <home>/bench/)")] = None,
          minutes: Annotated[Optional[float], typer.Option("--minutes", min=0.1, help="soak: how long the load "
                                                           "runs (default 5, --quick 1)")] = None) -> None:
    """Measure one part (index, query, hybrid, llm, turn, web, soak, badinput, cluster) and record its figures
    (NAME.json, RESULTS.md)."""
    if minutes is not None and name.value not in TIMED:
        typer.secho(f"error: --minutes applies to {', '.join(sorted(TIMED))} only, not {name.value!r}",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    try:
        figures, path = run_benchmark(name.value, quick=quick, out=out, minutes=minutes)
    except ImportError as exc:  # e.g. playwright for `web`: the bench extra
        typer.secho(f"error: benchmark {name.value!r} needs {exc.name or exc}: pip install -c constraints.txt "
                    "'marquee[bench]'   (in a checkout: make setup)", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(figures, indent=2, ensure_ascii=False))
    typer.echo(f"recorded: {path}", err=True)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)


def main(name: str) -> None:
    """`python -m benchmarks.NAME [--quick] [--out DIR]`."""
    app = typer.Typer(add_completion=False)

    @app.command()
    def one(quick: Annotated[bool, typer.Option("--quick")] = False,
            out: Annotated[Optional[Path], typer.Option("--out")] = None,
            minutes: Annotated[Optional[float], typer.Option("--minutes")] = None) -> None:
        bench(Benchmark(name), quick=quick, out=out, minutes=minutes)

    app()
