"""The bad-input corpus through every interface (`marquee bench badinput`; the tests run the same cases).

`benchmarks/data/bad_inputs.jsonl` holds one input per line: a hostile or malformed message, session or
user id, feedback, preference edit, configuration value, catalog or interaction row, REPL command or
command line. Each case says what a person should get: a clear error (`expect: "error"`, with words the
message must contain) or a sensible reply (`expect: "reply"`, optionally with words it must contain).
Per-interface overrides (`python`, `http`, `cli`) give another input or expectation where an interface
differs, or say why the case does not apply there ("n/a: …").

Every applicable case is run through
- the Python API (`RecommenderAgent`, `Settings.load`, the catalog loaders): a ValueError (TypeError for a
  wrong keyword) with the words, or a reply;
- HTTP: a real `marquee serve`, raw JSON to /gradio_api/call/<endpoint> (HTTP Basic) for every case and
  `gradio_client` for the rejected ones: an error event with the words, no traceback in the server log;
- the CLI: `marquee chat` driven line by line (one REPL for all messages, /set, /like …), one `marquee`
  process per command-line, id and configuration case, `marquee index` over batch files of catalog rows:
  exit code 2 with the words for errors, 0 otherwise, never a traceback.
A rejected call must leave the state unchanged: the session's preferences and the SQLite database
(sessions, messages, feedback) are compared before and after it.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.badinput.command_line import CliInterface
from benchmarks.badinput.corpus import INTERFACES, KINDS, Case, Outcome, load_corpus
from benchmarks.badinput.over_http import HttpInterface
from benchmarks.badinput.python_api import PythonInterface

__all__ = ["INTERFACES", "KINDS", "Case", "CliInterface", "HttpInterface", "Outcome", "PythonInterface", "failures",
           "load_corpus", "run", "summarize"]
TARGETS = {"python.failed": "0", "http.failed": "0", "cli.failed": "0"}


def summarize(outcomes: list[Outcome], cases: list[Case]) -> dict:
    figures: dict[str, Any] = {"cases": len(cases), "by_kind": {k: sum(c.kind == k for c in cases) for k in KINDS}}
    for interface in INTERFACES:
        mine = [o for o in outcomes if o.interface == interface]
        applicable = [o for o in mine if o.ok is not None]
        figures[interface] = {"applicable": len(applicable), "handled": sum(bool(o.ok) for o in applicable),
                              "failed": sum(o.ok is False for o in applicable),
                              "not_applicable": len(mine) - len(applicable)}
    return figures


def failures(outcomes: list[Outcome]) -> list[str]:
    return [f"{o.interface} {o.case}: {o.detail}" for o in outcomes if o.ok is False]


def run(quick: bool = False) -> dict:
    """Every case through the three interfaces against MARQUEE_HOME's agent (`quick`: every 5th case)."""
    from benchmarks.web_driver import ServerProcess
    from agent.core import RecommenderAgent
    from retrieval.config import Settings

    cases = load_corpus()[::5] if quick else load_corpus()
    settings = Settings.load(agent={"rerank": False, "explain": "template"})
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="marquee-badinput-") as tmp:
        workdir = Path(tmp)
        agent = RecommenderAgent(settings)
        agent.service.ensure_index()
        outcomes = [PythonInterface(agent, workdir).run(c) for c in cases]
        auth = ("bench", "bench:pw")
        with ServerProcess(settings.home, "--auth", ":".join(auth),
                           env={"MARQUEE_AGENT__EXPLAIN": "template"}) as server:
            http = HttpInterface(server.url, auth, settings.home, server.lines)
            outcomes += [http.run(c) for c in cases]
        outcomes += CliInterface(settings.home, workdir).run_all(cases)
    figures = summarize(outcomes, cases)
    figures["failures"] = failures(outcomes)[:20]
    figures["seconds"] = round(time.perf_counter() - started, 1)
    return figures

