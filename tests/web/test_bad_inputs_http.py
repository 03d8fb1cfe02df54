"""The bad-input corpus (benchmarks/data/bad_inputs.jsonl) over HTTP against the real `marquee serve`: raw JSON for
every case (HTTP Basic), `gradio_client` for every rejected one; an error names what to change, the server log
stays free of tracebacks, a rejected call changes nothing in the server's SQLite file."""
from __future__ import annotations

import pytest

from benchmarks.badinput import HttpInterface, failures, load_corpus, summarize

pytestmark = pytest.mark.slow

CASES = load_corpus()


def test_every_case_over_http(web_server, web_auth, shared_home):
    runner = HttpInterface(web_server.url, web_auth, shared_home, web_server.lines)
    outcomes = [runner.run(case) for case in CASES]
    assert failures(outcomes) == []
    assert summarize(outcomes, CASES)["http"]["handled"] >= 150
