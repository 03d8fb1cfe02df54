"""The Chinese alias table (agent/understanding/aliases_zh.tsv): data that matches the catalog, and its lookup."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from agent.understanding.aliases import AliasIndex, read_alias_rows, shown_names
from agent.understanding.lexicon import load_lexicon


@pytest.fixture(scope="module")
def rows():
    return read_alias_rows()


def test_every_row_names_a_catalog_title_by_id_and_label(rows, catalog):
    labels = {it.item_id: it.label for it in catalog}
    wrong = [(r.item_id, r.label) for r in rows if labels.get(r.item_id) != r.label]
    assert wrong == []
    assert len({r.item_id for r in rows}) == len(rows) >= 300


def test_covers_the_300_most_rated_titles(rows, ml100k):
    # counted from the log itself; a title tied with the 300th (114 ratings) counts too
    catalog, log = ml100k.catalog, ml100k.interactions
    counts = np.bincount(log.items, minlength=len(catalog))
    threshold = np.sort(counts)[::-1][299]
    top = [catalog.at(i) for i in np.flatnonzero(counts >= threshold)]
    assert len(top) >= 300
    labels = {r.item_id: r.label for r in rows}
    assert [it.label for it in top if labels.get(it.item_id) != it.label] == []
    names = shown_names({it.item_id: it.label for it in catalog})
    assert all(names[it.item_id] for it in top)
    assert names["50"] == "星球大战" and names["283"] == "艾玛" and names["100"] == "冰血暴"


def test_names_shown_only_are_never_looked_for(rows, catalog):
    mother = next(r for r in rows if r.label == "Mother (1996)")
    assert mother.names == () and mother.shown == "母亲"  # an everyday word: shown beside the title, not parsed
    index = AliasIndex.for_catalog({it.item_id: it.label for it in catalog})
    assert index.find("我和母亲一起看，来部喜剧") == [] and index.find("艾玛·汤普森演的") == []


def test_names_are_unique_and_not_parser_words(rows):
    names = Counter(n for r in rows for n in r.names)
    assert [n for n, k in names.items() if k > 1] == []
    lex = load_lexicon()
    vocabulary = set(lex.genre_of) | set(lex.mood_genres) | set(lex.audience_of)
    assert [n for n in names if n in vocabulary or len(n) < 2] == []


def test_a_row_applies_only_to_its_exact_label(rows):
    row = rows[0]
    assert len(AliasIndex.for_catalog({row.item_id: row.label})) == len(set(row.names))
    assert len(AliasIndex.for_catalog({row.item_id: "Another Film (2001)"})) == 0


def test_longest_name_first_and_punctuation_optional(catalog):
    index = AliasIndex.for_catalog({it.item_id: it.label for it in catalog})
    assert [h.label for h in index.find("教父2比教父好看")] == ["The Godfather: Part II (1974)", "The Godfather (1972)"]
    assert [h.label for h in index.find("看了星际迷航第一类接触")] == ["Star Trek: First Contact (1996)"]
    assert [h.label for h in index.find("终结者2：审判日")] == ["Terminator 2: Judgment Day (1991)"]
    assert index.find("今天天气很好，我想看电影") == []


def test_malformed_lines_are_reported(tmp_path):
    path = tmp_path / "aliases.tsv"
    path.write_text("# comment\n1\tToy Story (1995)\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"aliases.tsv:2: expected"):
        read_alias_rows(path)
    path.write_text("1\tToy Story (1995)\t~\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"aliases.tsv:1: a row needs at least one name"):
        read_alias_rows(path)
