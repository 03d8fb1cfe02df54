"""The bad-input corpus (benchmarks/data/bad_inputs.jsonl) through the Python API and the CLI; the HTTP half is
tests/web/test_bad_inputs_http.py. Every applicable case must get a clear error or a sensible reply, the
right exit code, no traceback, and a rejected call must leave the stored state unchanged."""
from __future__ import annotations

import collections

import pytest

from benchmarks.badinput import (INTERFACES, KINDS, CliInterface, PythonInterface, failures, load_corpus,
                                 summarize)

CASES = load_corpus()


def test_the_corpus_covers_every_kind_of_input():
    kinds = collections.Counter(case.kind for case in CASES)
    assert len(CASES) >= 250 and set(kinds) == set(KINDS), kinds
    assert len({case.id for case in CASES}) == len(CASES), "duplicate case ids"
    assert all(case.expect in ("error", "reply") for case in CASES)
    for interface in INTERFACES:  # each interface gets most of the corpus, and every n/a says why
        specs = [case.on(interface) for case in CASES]
        assert all(spec.startswith("n/a: ") for spec in specs if isinstance(spec, str))
    assert sum(not isinstance(case.on("python"), str) for case in CASES) >= 200


def test_every_case_through_the_python_api(agent, tmp_path):
    runner = PythonInterface(agent, tmp_path)
    outcomes = [runner.run(case) for case in CASES]
    assert failures(outcomes) == []
    assert summarize(outcomes, CASES)["python"]["handled"] >= 200


@pytest.mark.slow
def test_every_case_through_the_cli(shared_home, agent, tmp_path):
    """One REPL for every message, /set and /like line; one process per command line, id and configuration
    (they fail before anything loads); `marquee index` over batch files of catalog and interaction rows."""
    agent.service.ensure_index()  # the REPL's agent reuses the shared index
    outcomes = CliInterface(shared_home, tmp_path).run_all(CASES)
    assert failures(outcomes) == []
    assert summarize(outcomes, CASES)["cli"]["handled"] >= 200
