"""`marquee enrich`: LLM-written, grounded item descriptions for the catalog (resumable)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from retrieval.candidates.base import Candidate, CandidateRequest


def llm_rows(candidates: list["Candidate"], request: "CandidateRequest", catalog, llm_cfg, home: Path, k: int,
             rerank: bool = False, explain: bool = False, adapter: str | None = None) -> list[dict[str, Any]]:
    """`marquee search --rerank/--explain`: rerank retrieved candidates in one forward pass, explain the top k.

    Rows keep `marquee search --json`'s shape and gain `score` (fused when reranked), `retriever_score`,
    `llm_score`, `explanation` and `explanation_source`.
    """
    from agent.llm.explainer import Explainer
    from agent.llm.prompting import UserSummary
    from agent.llm.reranker import LLMReranker

    liked = [catalog[i] for i in request.liked if i in catalog]
    user = UserSummary(liked=tuple(it.label for it in liked),
                       disliked=tuple(catalog[i].label for i in request.disliked if i in catalog),
                       request=request.query)
    rows: list[dict[str, Any]] = []
    if rerank and candidates:
        ranked = LLMReranker.from_config(llm_cfg, home, catalog=catalog, adapter=adapter).rerank(user, candidates)
        for r in ranked[:k]:
            rows.append(_row(r.candidate, r.score, r.retriever_score, r.llm_score))
    else:
        rows = [_row(c, c.score, c.score, None) for c in candidates[:k]]
    if explain and rows:
        explainer = Explainer.from_config(llm_cfg, home, catalog, adapter=adapter)
        notes = explainer.explain([catalog[r["item_id"]] for r in rows], request=request.query, liked=liked)
        for row, note in zip(rows, notes):
            row.update(explanation=note.text, explanation_source=note.source)
    return rows


def _row(c: "Candidate", score: float, retriever_score: float, llm_score: float | None) -> dict[str, Any]:
    clean = lambda v: None if v is None or v != v else round(float(v), 6)  # noqa: E731  (NaN → null)
    return {"item_id": c.item.item_id, "title": c.item.title, "year": c.item.year, "genres": list(c.item.genres),
            "score": clean(score), "retriever_score": clean(retriever_score), "llm_score": clean(llm_score),
            "sources": {name: round(float(v), 6) for name, v in c.sources.items()}}


def enrich(
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="describe at most N more items")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=64, help="items per generation batch")] = 8,
    adapter: Annotated[str | None, typer.Option("--adapter", help="LoRA adapter path, or 'none'")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="marquee.toml path")] = None,
) -> None:
    """Write 1–2 sentence descriptions for items that have none (skips items already described)."""
    from retrieval.config import Settings
    from agent.llm.backend import LocalBackend
    from agent.llm.describe import DescriptionWriter
    from agent.llm.loading import ModelNotAvailable, load_model
    from retrieval.catalog import load_dataset
    from retrieval.catalog.descriptions import descriptions_path
    from retrieval.catalog.errors import CatalogError

    try:
        settings = Settings.load(config)
        catalog = load_dataset(settings.catalog, settings.data_dir).catalog
        llm = load_model(settings.llm, settings.data_dir, adapter=adapter)
    except (ModelNotAvailable, CatalogError, FileNotFoundError, ValueError) as exc:
        typer.secho(f"Error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None
    writer = DescriptionWriter(LocalBackend(llm, batch_size=batch_size), catalog)
    report = writer.enrich(descriptions_path(settings.data_dir, catalog.name), limit=limit, batch_size=batch_size)
    typer.echo(json.dumps(report.as_dict(), indent=2))
    if report.written:
        typer.echo("Run `marquee index` to embed the new descriptions.", err=True)


def register(app: typer.Typer) -> None:
    app.command("enrich")(enrich)
