"""The public conversation set (agent/data/conversations.jsonl) through the real agent: the issue's targets."""
from __future__ import annotations

import json

import pytest

from agent.chat_eval import DEFAULT_CASES, evaluate, grounding_violations, load_cases
from agent.replies import ReplyItem


def test_set_is_big_and_varied():
    cases = load_cases()
    assert len(cases) >= 40
    keys = {k for c in cases for t in c["turns"] for k in t["expect"]}
    assert {"genres_any", "exclude_genres", "year_min", "year_max", "count", "exclude_titles",
            "older_than_previous", "excluded_previous_positions", "text_contains"} <= keys
    assert sum(len(c["turns"]) > 1 for c in cases) >= 8  # multi-turn refinements
    assert sum(any("\u4e00" <= ch <= "\u9fff" for t in c["turns"] for ch in t["user"]) for c in cases) >= 6


def test_conversation_set_meets_targets(agent):
    report = evaluate(agent, load_cases())
    summary = report.summary()
    assert summary["constraint_satisfaction"] >= 0.98, report.failures
    assert summary["out_of_catalog"] == summary["duplicates"] == summary["already_seen"] == 0
    assert summary["grounding_violations"] == 0
    assert summary["checks"] > 400


def test_grounding_checker_catches_false_facts(catalog):
    alien = next(it for it in catalog if it.label == "Alien (1979)")
    ok = ReplyItem(item_id=alien.item_id, title=alien.title, year=alien.year, genres=list(alien.genres),
                   explanation="A Horror, Sci-Fi film from 1979.")
    assert grounding_violations(ok, catalog) == []
    bad = ok.model_copy(update={"explanation": "A Western from 1985, like Star Wars."})
    assert set(grounding_violations(bad, catalog)) == {"genre Western", "year 1985", "title Star Wars"}


def test_bad_case_files_are_reported_with_line_numbers(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps({"id": "ok", "turns": []}) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"cases.jsonl:2: not JSON"):
        load_cases(path)
    path.write_text(json.dumps({"turns": []}) + "\n")
    with pytest.raises(ValueError, match=r":1: a case needs an 'id'"):
        load_cases(path)
    assert DEFAULT_CASES.is_file()
