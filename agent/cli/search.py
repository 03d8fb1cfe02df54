"""`marquee search`: hybrid candidates from the command line.

    marquee search "sci-fi and action films" --genre sci-fi --year-min 1980 --like "star wars" --k 10 --json

The command is three steps, each a function other commands (and later options) reuse:
`build_request` (validate flags → CandidateRequest), `RetrievalService.candidates`, and
`result_rows` + `render_table` / JSON. A reranker or explainer slots in between retrieve and render
(rows may carry an "explanation" field, which the table shows when present).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:  # heavy imports stay inside the command (fast `marquee --help`)
    from retrieval.candidates.base import Candidate, CandidateRequest
    from retrieval.service import RetrievalService


class SearchInputError(ValueError):
    """Bad flags or arguments; the message says what to change."""


def load_service(config: Path | None, **candidate_overrides: Any) -> "RetrievalService":
    """The retrieval stack from settings; `candidate_overrides` (e.g. mmr_lambda=0.7) are validated like
    the [candidates] section of marquee.toml (a bad value raises ValueError)."""
    from retrieval.config import CandidateConfig, Settings

    settings = Settings.load(config)
    overrides = {key: value for key, value in candidate_overrides.items() if value is not None}
    if overrides:
        try:
            settings.candidates = CandidateConfig.model_validate({**settings.candidates.model_dump(), **overrides})
        except ValueError as exc:  # pydantic's ValidationError: keep only the human part
            flag = {"mmr_lambda": "--mmr", "long_tail": "--long-tail"}
            raise SearchInputError("; ".join(f"{flag.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}"
                                             for e in getattr(exc, "errors", lambda: [])()) or str(exc)) from None
    from retrieval.service import RetrievalService  # heavy: after the flags are known to be good

    return RetrievalService.from_config(settings)


def build_request(service: "RetrievalService", query: str = "", genres: list[str] | None = None,
                  exclude_genres: list[str] | None = None, year_min: int | None = None,
                  year_max: int | None = None, likes: list[str] | None = None) -> "CandidateRequest":
    """Turn CLI-level inputs (free text, genre names in any case, liked *titles*) into a request."""
    from retrieval.candidates.base import CandidateRequest
    from retrieval.constraints import Constraints
    from retrieval.service import UnknownGenreError

    from agent.validation import year_bounds

    query, likes, genres, exclude_genres = check_flags(query, likes, genres, exclude_genres, year_min, year_max)
    lo, hi = year_bounds(it.year for it in service.catalog)  # the agent's rule (agent/validation.py)
    for flag, year in (("--year-min", year_min), ("--year-max", year_max)):
        if year is not None and not lo <= year <= hi:
            raise SearchInputError(f"{flag} must be between {lo} and {hi}, got {year}")
    try:
        include = service.resolve_genres(genres or [])
        exclude = service.resolve_genres(exclude_genres or [])
    except UnknownGenreError as exc:
        raise SearchInputError(str(exc)) from None
    if include & exclude:
        raise SearchInputError(f"genre both required and excluded: {', '.join(sorted(include & exclude))}")
    liked = []
    for title in likes or []:
        hits = service.search_titles(title, limit=1)
        if not hits:
            close = service.titles.suggest(title)
            hint = f"; did you mean: {'; '.join(it.label for it in close)}?" if close else ""
            raise SearchInputError(f"no catalog title matches --like {title!r}{hint}")
        liked.append(hits[0][0].item_id)
    return CandidateRequest(query=query, liked=tuple(dict.fromkeys(liked)),
                            constraints=Constraints(include_genres=include, exclude_genres=exclude,
                                                    year_min=year_min, year_max=year_max))


def check_flags(query: str, likes=None, genres=None, exclude_genres=None, year_min: int | None = None,
                year_max: int | None = None) -> tuple[str, list[str], list[str], list[str]]:
    """What can be checked before anything loads. Free text as the agent takes it (agent/validation.py): at
    most MAX_MESSAGE_CHARS characters; bytes that were not UTF-8 (the shell hands them over as lone
    surrogates) become U+FFFD, which the tokenizer accepts; control characters and runs of whitespace
    become one space. Returns the cleaned query, likes, genres and excluded genres."""
    from agent.validation import MAX_MESSAGE_CHARS, clean_text

    if len(query or "") > MAX_MESSAGE_CHARS:
        raise SearchInputError(f"query too long: {len(query)} characters, at most {MAX_MESSAGE_CHARS}")
    query = " ".join(clean_text(query or "").split())
    if not query and not genres and not likes and year_min is None and year_max is None:
        raise SearchInputError('nothing to search for: give a query (e.g. marquee search "space opera"), '
                               "--genre, --year-min/--year-max or --like TITLE")
    for flag, year in (("--year-min", year_min), ("--year-max", year_max)):
        if year is not None and not 1 <= year <= 9999:
            raise SearchInputError(f"{flag} must be a year between 1 and 9999, got {year}")
    if year_min is not None and year_max is not None and year_min > year_max:
        raise SearchInputError(f"--year-min {year_min} is after --year-max {year_max}")
    return (query, [clean_text(t) for t in likes or []], [clean_text(g) for g in genres or []],
            [clean_text(g) for g in exclude_genres or []])


def result_rows(candidates: list["Candidate"]) -> list[dict[str, Any]]:
    """The JSON shape of `marquee search --json` (one dict per candidate, best first)."""
    return [{"item_id": c.item.item_id, "title": c.item.title, "year": c.item.year,
             "genres": list(c.item.genres), "score": round(float(c.score), 6),
             "sources": {name: round(float(v), 6) for name, v in c.sources.items()}} for c in candidates]


def render_table(rows: list[dict[str, Any]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("title", style="bold")
    table.add_column("year", justify="right")
    table.add_column("genres")
    table.add_column("score", justify="right")
    table.add_column("sources", style="dim")
    explain = any(r.get("explanation") for r in rows)
    if explain:
        table.add_column("why")
    for n, r in enumerate(rows, start=1):
        cells = [str(n), r["title"], str(r["year"] or ""), ", ".join(r["genres"]), f"{r['score']:.4f}",
                 " ".join(f"{k}={v:.2f}" for k, v in r["sources"].items())]
        table.add_row(*cells, *([r.get("explanation", "")] if explain else []))
    Console().print(table)


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"Error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


Text = typer.Argument(help="what you are in the mood for, e.g. 'sci-fi and action films'")
Genres = typer.Option("--genre", "-g", help="required genre, any case (repeatable: any of them)")
ExcludedGenres = typer.Option("--exclude-genre", "-x", help="excluded genre (repeatable)")
Likes = typer.Option("--like", "-l", help="a title you liked, fuzzy-matched (repeatable)")


def search(
    query: Annotated[str, Text] = "",
    genre: Annotated[list[str] | None, Genres] = None,
    exclude_genre: Annotated[list[str] | None, ExcludedGenres] = None,
    year_min: Annotated[int | None, typer.Option("--year-min", help="earliest release year")] = None,
    year_max: Annotated[int | None, typer.Option("--year-max", help="latest release year")] = None,
    like: Annotated[list[str] | None, Likes] = None,
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000, help="how many results")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    config: Annotated[Path | None, typer.Option("--config", help="marquee.toml path")] = None,
    diversity: Annotated[float | None, typer.Option("--mmr", help="MMR lambda in [0, 1]: lower = more diverse "
                                                     "(default from config: 1 = off)")] = None,
    long_tail: Annotated[float | None, typer.Option("--long-tail", help="≥ 0: penalise popular items "
                                                     "(0 = off)")] = None,
    rerank: Annotated[bool, typer.Option("--rerank", help="rerank the candidates with the LLM")] = False,
    explain: Annotated[bool, typer.Option("--explain", help="add a grounded LLM explanation per result")] = False,
    adapter: Annotated[str | None, typer.Option("--adapter", help="LoRA adapter path, or 'none'")] = None,
) -> None:
    """Search the catalog by meaning, with hard filters and liked titles (hybrid retrieval)."""
    from retrieval.catalog.errors import CatalogError

    try:
        check_flags(query, like, genre, exclude_genre, year_min, year_max)  # fail before loading anything
        service = load_service(config, mmr_lambda=diversity, long_tail=long_tail)
        request = build_request(service, query, genre, exclude_genre, year_min, year_max, like)
        service.ensure_index(progress=not as_json and sys.stderr.isatty())
        candidates = service.candidates(request, max(k, 20) if rerank else k)  # the reranker sees 20
        if rerank or explain:  # LLM step (agent/cli/llm.py); rows gain llm_score / explanation fields
            from agent.cli.llm import llm_rows
            from retrieval.config import Settings

            settings = Settings.load(config)
            rows = llm_rows(candidates, request, service.catalog, settings.llm, settings.data_dir, k,
                            rerank=rerank, explain=explain, adapter=adapter)
    except (SearchInputError, CatalogError, FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None
    except RuntimeError as exc:  # e.g. a missing model, with its fix in the message
        raise fail(str(exc), code=1) from None
    if not (rerank or explain):
        rows = result_rows(candidates)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    elif not rows:
        typer.echo("No items satisfy these constraints; try loosening a filter.")
    else:
        shown = " ".join(query.split())
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        render_table(rows, title=f"{len(rows)} results" + (f" for {shown!r}" if shown else ""))


def register(app: typer.Typer) -> None:
    app.command("search")(search)
