"""`marquee doctor`'s checks of the files Marquee keeps in MARQUEE_HOME, and `marquee doctor --repair`.

| file (under MARQUEE_HOME)              | kind                   | checked                               | --repair                               |
|----------------------------------------|------------------------|---------------------------------------|----------------------------------------|
| chroma/ (the search index)             | derived                | `ItemStore.verify(thorough=True)`     | damaged files aside, full rebuild      |
| models/smollm2-135m/ (converted LLM)   | derived                | manifest sha256, weights, JSON        | aside, converted again                 |
| models/sasrec-*.safetensors + .json    | derived                | weights header/size, sidecar sha256   | aside (retrained when next needed)     |
| catalogs/*/descriptions.jsonl          | written by `enrich`    | every row parses                      | good rows kept, original aside         |
| adapters/*/ (trained, shipped adapters) | written by `finetune`  | manifest, config JSON, weights        | aside (the packaged adapter is used)   |
| langgraph.db (tool-mode threads)       | conversations          | SQLite quick_check                    | aside (a new one is started)           |
| eval/<run>/*.json                      | reports                | JSON parses                           | the run folder aside                   |

"Aside" is `<home>/quarantine/<UTC time>/<the file's path under home>` (`retrieval.integrity.quarantine`):
nothing is ever deleted. marquee.db has its own check.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from agent.cli.checks import Check

REPAIR = "marquee doctor --repair"


def index_checks(settings, dataset, store) -> list[Check]:
    """The search index, thoroughly (files, probe searches, every vector findable), then whether it is current."""
    from retrieval.store_check import REPAIR_FIX

    health = store.verify(dataset.catalog if dataset else None, thorough=True)
    if not health.ok:
        return [Check("search index", False, f"damaged: {health.summary()}", REPAIR_FIX)]
    status = health.status
    checks = []
    if status.collection is None:
        checks.append(Check("search index", False, "not built", "marquee index", required=False))
    elif status.stale:
        p = status.plan
        why = "built with another encoder" if not status.encoder_matches else \
            f"{len(p.new)} new, {len(p.changed)} changed, {len(p.metadata_only)} re-described, {len(p.removed)} removed"
        checks.append(Check("search index", False, f"{status.count} items, stale ({why})", "marquee index",
                            required=False))
    else:
        checks.append(Check("search index", True, f"{status.count} items, up to date ({status.collection}, "
                            f"built {status.created}); {health.summary()}"))
    if health.leftovers:
        checks.append(Check("index leftovers", False, f"{len(health.leftovers)} folder(s) of dropped snapshots in "
                            f"{status.location}", "marquee index   (removes them)", required=False))
    return checks


# ---------------------------------------------------------------------------------------------- other files


def _problems(home: Path) -> list[tuple[str, Path, str, str]]:
    """(check name, path, problem, fix) of every damaged file Marquee keeps, except the index and marquee.db."""
    from agent.llm.loading import adapter_problem, converted_dir, model_folder_problem
    from retrieval.catalog.descriptions import read_descriptions
    from retrieval.catalog.errors import CatalogError
    from retrieval.integrity import json_problem, safetensors_problem, sha256, sqlite_problem

    found = []
    model = converted_dir(home)
    if model.exists():
        problem = model_folder_problem(model)
        if problem:
            found.append(("converted LLM", model, problem, f"{REPAIR}   (moves it aside and converts it again)"))
    for weights in sorted((home / "models").glob("sasrec-*.safetensors")):
        sidecar = weights.with_suffix(".json")
        problem = safetensors_problem(weights) or (json_problem(sidecar) if sidecar.exists() else
                                                   "its sidecar .json is missing (an interrupted save)")
        if problem is None:
            want = json.loads(sidecar.read_text(encoding="utf-8")).get("sha256")
            problem = "the weights changed since they were written (sha256 differs)" \
                if want and sha256(weights) != want else None
        if problem:
            found.append(("SASRec cache", weights, problem,
                          f"{REPAIR}   (moves it aside; SASRec is trained again when next needed)"))
    for path in sorted(home.glob("catalogs/*/descriptions.jsonl")):
        try:
            read_descriptions(path)
        except CatalogError as exc:
            found.append(("descriptions", path, f"{len(exc.problems)} malformed row(s), first: {exc.problems[0]}",
                          f"{REPAIR}   (keeps the good rows, moves the file aside; then `marquee enrich`)"))
    for folder in sorted(p for p in (home / "adapters").glob("*") if p.is_dir()):
        if (folder / "adapter_config.json").exists() or (folder / "adapter_model.safetensors").exists():
            problem = adapter_problem(folder)
            if problem:
                found.append((f"adapter {folder.name}", folder, problem,
                              f"{REPAIR}   (moves it aside; the packaged adapter is used), then "
                              "`marquee finetune --ship` to ship a good one"))
    problem = sqlite_problem(home / "langgraph.db")
    if problem:
        found.append(("langgraph.db", home / "langgraph.db", problem,
                      f"{REPAIR}   (moves it aside; tool-mode conversations start afresh)"))
    for run in sorted(p for p in (home / "eval").glob("*") if p.is_dir()):
        bad = next(((f, problem) for f in sorted(run.glob("*.json")) if (problem := json_problem(f))), None)
        if bad:
            found.append((f"eval report {run.name}", run, bad[1],
                          f"{REPAIR}   (moves the run aside), then re-run `marquee eval`"))
    return found


def file_checks(settings) -> list[Check]:
    """One row per kind of file Marquee keeps (the index has its own): ok, or each damaged file with its fix."""
    home = Path(settings.home)
    problems = _problems(home)
    checks = [Check(name, False, f"{path}: {problem}", fix) for name, path, problem, fix in problems]
    if not problems:
        checks.append(Check("kept files", True, "converted LLM, SASRec caches, descriptions, adapters, langgraph.db "
                            "and eval reports are intact (those present)"))
    return checks


# ---------------------------------------------------------------------------------------------- repair


def repair_files(settings, progress: bool = False) -> list[str]:
    """Move every damaged file aside and rebuild what can be rebuilt; returns what was done, one line each.
    The index comes last: it is rebuilt from the (repaired) descriptions."""
    from retrieval.catalog.descriptions import keep_good_rows
    from retrieval.integrity import quarantine

    home = Path(settings.home)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    done = []
    for name, path, problem, _fix in _problems(home):
        if name == "descriptions":
            kept, dropped, moved = keep_good_rows(path, home)
            done.append(f"{path}: kept {kept} good rows, dropped {dropped}; the damaged file is in {moved}")
            continue
        moved = quarantine(home, [path], stamp)
        done.append(f"{name}: {problem}; moved {path} to {moved[0] if moved else '(already gone)'}")
        if name == "converted LLM":
            done.append(_convert_again(home))
    done += repair_index(settings, progress)
    return done


def _convert_again(home: Path) -> str:
    from agent.llm.loading import ModelNotAvailable, convert_embedded

    try:
        return f"converted LLM: converted again into {convert_embedded(home)}"
    except ModelNotAvailable as exc:
        return f"converted LLM: not converted again ({exc}); it is converted on first use"


def repair_index(settings, progress: bool = False) -> list[str]:
    """Thorough check of the index; when damaged, rebuild it (damaged files moved aside) and check again."""
    from retrieval.catalog import CatalogError, load_dataset
    from retrieval.embeddings import SentenceEncoder
    from retrieval.store import ItemStore

    try:
        catalog = load_dataset(settings.catalog, settings.home).catalog
    except CatalogError as exc:
        return [f"search index: not checked, the catalog does not load ({str(exc).splitlines()[0]})"]
    store = ItemStore(settings.store, SentenceEncoder(settings.embedding), settings.home)
    health = store.verify(catalog, thorough=True)
    if health.ok and not health.leftovers:  # a missing or stale index is `marquee index`'s job, not a repair
        return []
    report = store.index(catalog, progress=progress, damage=health.damage)
    after = store.verify(catalog, thorough=True)
    lines = []
    if not health.ok:
        lines.append(f"search index: damaged ({health.summary()})")
    if report.quarantined:
        lines.append(f"search index: moved the damaged files to {', '.join(report.quarantined)}")
    if report.switched:
        lines.append(f"search index: rebuilt as {report.collection} ({report.total} items, embedded {report.embedded}, "
                     f"{report.seconds:.0f} s)")
    if report.leftovers_removed:
        lines.append(f"search index: removed {report.leftovers_removed} folder(s) of dropped snapshots")
    lines.append(f"search index: now {after.summary()}")
    return lines
