"""The public conversation set (agent/data/conversations.jsonl, package data) through the real agent:
the issue's targets on the held-back test split, and the split itself."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from agent.chat_eval import DEFAULT_CASES, TEST_FRACTION, assign_splits, evaluate, grounding_violations, load_cases
from agent.replies import Reply, ReplyItem


def test_set_is_big_and_varied():
    cases = load_cases()
    assert len(cases) >= 400
    keys = {k for c in cases for t in c["turns"] for k in t["expect"]}
    assert {"genres_any", "genres_all", "both_at_least", "exclude_genres", "year_min", "year_max", "count",
            "exclude_titles", "liked_titles", "anchor_titles", "seen_titles", "disliked_titles", "absent_genres",
            "state_genres", "no_fallback", "help_reply", "older_than_previous", "excluded_previous_positions",
            "text_contains"} <= keys
    assert sum(len(c["turns"]) > 1 for c in cases) >= 30  # multi-turn refinements and switches
    chinese = [c for c in cases if any("\u4e00" <= ch <= "\u9fff" for t in c["turns"] for ch in t["user"])]
    assert len(chinese) >= 120
    families = Counter(c["family"] for c in cases)
    for family in ("liked-title-en", "anchor-title-en", "anchor-title-zh", "seen-list-en", "seen-list-zh",
                   "switch-en", "switch-zh", "compound-en", "compound-zh", "and-list-en", "question-zh",
                   "negation-en", "negation-zh", "audience-en", "audience-zh", "decade-en", "count-en", "mood-en",
                   "adversarial", "nothing-understood"):
        assert families[family] >= 5, family


def test_split_is_stable_and_holds_back_a_fifth_of_every_family():
    cases = load_cases()
    assert {c["id"]: c["split"] for c in cases} == assign_splits(cases)  # the file matches the rule
    by_family: dict[str, Counter] = {}
    for c in cases:
        by_family.setdefault(c["family"], Counter())[c["split"]] += 1
    for family, counts in by_family.items():
        size = sum(counts.values())
        if size >= 2:
            assert counts["test"] == max(1, int(size * TEST_FRACTION + 0.5)), family
    # a case's split depends only on its family's ids: adding a case elsewhere moves nothing
    extra = [*cases, {"id": "brand-new", "family": "liked-title-en", "turns": []}]
    moved = {c["id"] for c in cases if c["family"] != "liked-title-en"
             and assign_splits(extra)[c["id"]] != c["split"]}
    assert not moved
    assert {c["id"] for c in load_cases(split="test")} == {c["id"] for c in cases if c["split"] == "test"}
    with pytest.raises(ValueError, match="split must be"):
        load_cases(split="train")


def test_held_back_split_meets_the_targets(agent):
    report = evaluate(agent, load_cases(split="test"))
    summary = report.summary()
    assert summary["cases"] >= 80
    assert summary["constraint_satisfaction"] >= 0.98, report.failures
    assert summary["liked_returned"] == summary["seen_returned"] == summary["disliked_returned"] == 0
    assert summary["popularity_fallbacks"] == 0
    assert summary["out_of_catalog"] == summary["duplicates"] == 0
    assert summary["grounding_violations"] == 0
    assert summary["repeated_phrases"] == 0  # no two explanations of a reply share a five-word sequence
    assert summary["wrong_language"] == 0  # Chinese messages get Chinese replies, English ones English


def test_grounding_checker_catches_false_facts(catalog):
    alien = next(it for it in catalog if it.label == "Alien (1979)")
    ok = ReplyItem(item_id=alien.item_id, title=alien.title, year=alien.year, genres=list(alien.genres),
                   explanation="A Horror, Sci-Fi film from 1979.")
    assert grounding_violations(ok, catalog) == []
    bad = ok.model_copy(update={"explanation": "A Western from 1985, like Star Wars."})
    assert set(grounding_violations(bad, catalog)) == {"genre Western", "year 1985", "title Star Wars"}
    # a liked title may be named, and so may a shorter catalog title inside it ("Dead Man" in "Dead Man Walking")
    liked = ok.model_copy(update={"explanation": "Viewers who liked Dead Man Walking liked it."})
    assert grounding_violations(liked, catalog, {"Dead Man Walking"}) == []
    assert grounding_violations(liked, catalog) != []
    # with evidence: its titles may be named, and every number must be one of its numbers
    from retrieval.evidence import Connection, Evidence

    heat = next(it for it in catalog if it.label == "Heat (1995)")
    evidence = Evidence(item_id=alien.item_id, connections=[Connection(
        item_id=heat.item_id, title=heat.label, relation="liked", measure="loved", fans=118, also=40, percent=34,
        lift=1.5, strength=0.26)])
    cited = ok.model_copy(update={"evidence": evidence,
                                  "explanation": "Liked by 34% of the 118 viewers who loved Heat (1995)."})
    assert grounding_violations(cited, catalog) == []
    wrong = cited.model_copy(update={"explanation": "Liked by 43% of the 118 viewers who loved Heat (1995)."})
    assert grounding_violations(wrong, catalog) == ["number 43"]


def test_repeated_phrases_and_languages_are_measured(catalog):
    from agent.chat_eval import in_language, shared_phrases

    star_wars = catalog["50"]
    same = [ReplyItem(item_id=str(n), title=f"Film {n}", explanation=f"Rated 4.{n} on average by the many people "
                                                                      "who scored it so far.") for n in range(3)]
    assert shared_phrases(same)  # "on average by the many" ... in every one
    titles = [ReplyItem(item_id="50", title=star_wars.title, year=1977,
                        explanation="Liked by 80% of the 300 viewers who loved Star Wars (1977)."),
              ReplyItem(item_id="1", title="Toy Story", year=1995,
                        explanation="Of the 300 people who loved Star Wars (1977), 240 loved it too.")]
    assert shared_phrases(titles, n=5) == []  # a shared title is not a shared phrase
    zh = Reply(text="为你挑了1部电影：\n1. X——观众平均给它4.0分。", items=[same[0].model_copy(update={
        "explanation": "观众平均给它4.0分。"})], language="zh")
    assert in_language(zh, "zh") and not in_language(zh, "en")
    assert not in_language(Reply(text="Here is 1 pick:", items=same[:1]), "zh")


def test_bad_case_files_are_reported_with_line_numbers(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps({"id": "ok", "turns": []}) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"cases.jsonl:2: not JSON"):
        load_cases(path)
    path.write_text(json.dumps({"turns": []}) + "\n")
    with pytest.raises(ValueError, match=r":1: a case needs an 'id'"):
        load_cases(path)
    assert DEFAULT_CASES.is_file() and "agent" in str(DEFAULT_CASES)
