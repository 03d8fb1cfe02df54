"""Own-catalog loaders: CSV/JSONL schema, every kind of bad row (file + line), skip-and-report, overlay."""
from __future__ import annotations

import csv
import json
import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from retrieval.catalog import (CatalogError, load_catalog, load_dataset, load_dataset_with_report,
                               load_interactions, load_user_dataset)
from retrieval.catalog.descriptions import (DescriptionRecord, append_descriptions, descriptions_path,
                                            read_descriptions)
from retrieval.config import CatalogConfig

GOOD_CSV = (
    "item_id,title,year,genres,description,author\n"
    "b1,Dune,1965,Sci-Fi|Adventure,Desert planet epic,Herbert\n"
    'b2,"Pride and Prejudice",1813,"Romance, Classic","Manners, marriage and\nmisunderstanding",Austen\n'
    "b3,Untitled Notes,,Essay,,Anon\n"
)


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def problems(exc: pytest.ExceptionInfo) -> list[tuple[int, str]]:
    return [(p.line, p.problem) for p in exc.value.problems]


def test_csv_catalog_loads_every_field(tmp_path):
    catalog, report = load_catalog(write(tmp_path, "books.csv", GOOD_CSV))
    assert not report and catalog.name == "books" and len(catalog) == 3
    dune = catalog["b1"]
    assert (dune.title, dune.year, dune.genres, dune.description) == ("Dune", 1965, ("Sci-Fi", "Adventure"),
                                                                      "Desert planet epic")
    assert dune.extra == {"author": "Herbert"}
    pride = catalog["b2"]
    assert pride.genres == ("Romance", "Classic")  # comma-separated genres
    assert pride.description == "Manners, marriage and\nmisunderstanding"  # quoted field over two lines
    assert catalog["b3"].year is None and catalog["b3"].description == ""


def test_jsonl_catalog_accepts_lists_and_numbers(tmp_path):
    rows = [{"item_id": "s1", "title": "Blue Train", "year": 1958, "genres": ["Jazz", "Hard bop"], "label": "Blue Note"},
            {"item_id": "s2", "title": "Kind of Blue", "genres": "Jazz|Modal"}]
    path = write(tmp_path, "albums.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    catalog, _ = load_catalog(path)
    assert catalog["s1"].year == 1958 and catalog["s1"].genres == ("Jazz", "Hard bop")
    assert catalog["s1"].extra == {"label": "Blue Note"}
    assert catalog["s2"].year is None and catalog["s2"].genres == ("Jazz", "Modal")


def test_missing_required_column_names_file_line_and_column(tmp_path):
    path = write(tmp_path, "c.csv", "item_id,name,year\n1,Alien,1979\n")
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    assert f"{path}:1:" in str(exc.value) and "missing required column(s): title" in str(exc.value)
    assert problems(exc) == [(1, "missing required column(s): title")]


def test_every_bad_csv_row_is_reported_with_its_line(tmp_path):
    text = ("item_id,title,year,genres\n"
            "1,Alien,1979,Sci-Fi\n"          # 2 ok
            "2,,1986,Action\n"               # 3 empty title
            "1,Aliens,1986,Action\n"         # 4 duplicate id
            "3,Brazil,nineteen85,Comedy\n"   # 5 non-numeric year
            "4,Heat,1995\n"                  # 6 wrong field count
            ",Nameless,2000,Drama\n")        # 7 empty id
    path = write(tmp_path, "c.csv", text)
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    assert problems(exc) == [
        (3, "empty title"),
        (4, "duplicate item_id '1' (first on line 2)"),
        (5, "year is not a whole number: 'nineteen85'"),
        (6, "expected 4 fields, found 3"),
        (7, "empty item_id"),
    ]
    message = str(exc.value)
    assert "5 bad catalog row(s)" in message and f"{path}:5: year is not a whole number" in message


def test_bad_utf8_bytes_are_reported_per_line_not_per_file(tmp_path):
    data = "item_id,title\n1,Amélie\n".encode() + b"2,Caf\xe9 Society\n" + b"3,Ok\n" + b"4,\xff\xfe\n"
    path = write(tmp_path, "latin1.csv", data)
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    assert problems(exc) == [(3, "bad encoding: the row is not valid UTF-8"),
                             (5, "bad encoding: the row is not valid UTF-8")]
    catalog, report = load_catalog(path, skip_bad_rows=True)
    assert catalog.item_ids == ["1", "3"] and catalog["1"].title == "Amélie"
    assert [p.line for p in report.skipped] == [3, 5]


def test_bad_jsonl_lines(tmp_path):
    lines = ['{"item_id": "a", "title": "Fine"}',
             '{"item_id": "b", "title": "Broken"',          # 2 invalid JSON
             '["not", "an", "object"]',                      # 3
             '{"item_id": "c"}',                             # 4 missing title
             '{"item_id": "d", "title": "Year", "year": -5}',  # 5 negative year
             '{"item_id": "e", "title": "Yr", "year": true}']  # 6 boolean year
    path = write(tmp_path, "c.jsonl", "\n".join(lines).encode() + b'\n{"item_id": "f", "title": "\xc3("}\n')
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    got = problems(exc)
    assert [line for line, _ in got] == [2, 3, 4, 5, 6, 7]
    assert got[0][1].startswith("invalid JSON") and got[1][1] == "expected a JSON object per line"
    assert got[2][1] == "missing field(s): title" and got[3][1] == "year is out of range (0 to 9999): -5"
    assert "year is not a whole number" in got[4][1]
    assert got[5][1] == "bad encoding: the line is not valid UTF-8"


def test_numbers_out_of_range_are_bad_rows_with_their_line(tmp_path):
    """Values that once passed and then broke every later turn (a year of 10^20 overflowed the index)."""
    lines = ['{"item_id": "a", "title": "Fine", "year": 1999}',
             '{"item_id": "b", "title": "Huge", "year": 100000000000000000000}',   # 2
             '{"item_id": "c", "title": "Float", "year": 1995.5}',                 # 3
             '{"item_id": "d", "title": ["a", "list"]}']                           # 4
    path = write(tmp_path, "c.jsonl", "\n".join(lines).encode())
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    got = problems(exc)
    assert got == [(2, "year is out of range (0 to 9999): 100000000000000000000"),
                   (3, "year is not a whole number: 1995.5"), (4, "title must be text, not list")]
    catalog = write(tmp_path, "ok.csv", "item_id,title\n1,Alien\n")
    inter = write(tmp_path, "i.csv", "user_id,item_id,rating,timestamp\nu,1,4,1e300\nu,1,1e40,5\nu,1,nan,5\nu,1,3,7\n")
    with pytest.raises(CatalogError) as exc:
        load_interactions(inter, load_catalog(catalog)[0])
    got = problems(exc)
    assert [line for line, _ in got] == [2, 3, 4]
    assert "timestamp is out of range" in got[0][1] and "rating is out of range" in got[1][1]
    assert got[2][1] == "rating is not a number: 'nan'"


def test_csv_field_over_the_csv_limit_is_reported_with_its_line(tmp_path):
    big = "x" * (csv.field_size_limit() + 10)
    path = write(tmp_path, "c.csv", f'item_id,title,description\n1,Alien,fine\n2,Heat,"{big}"\n3,Ran,ok\n')
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    got = problems(exc)
    assert len(got) == 1 and got[0][0] == 3 and "field larger than field limit" in got[0][1]
    catalog, report = load_catalog(path, skip_bad_rows=True)
    assert catalog.item_ids == ["1", "3"] and [p.line for p in report.skipped] == [3]


def test_control_characters_leave_text_fields(tmp_path):
    path = write(tmp_path, "c.csv", "item_id,title,description\n1,\x1b[31mRed\x1b[0m,a\x07b\n")
    item = load_catalog(path)[0]["1"]
    assert "\x1b" not in item.title and item.title.startswith("[31mRed") and item.description == "a b"


def test_skip_bad_rows_loads_the_rest_and_reports_what_was_skipped(tmp_path):
    path = write(tmp_path, "c.csv", "item_id,title,year\n1,Alien,1979\n2,,1986\n1,Dup,1990\n3,Heat,1995\n")
    catalog, report = load_catalog(path, skip_bad_rows=True)
    assert catalog.item_ids == ["1", "3"] and catalog["1"].title == "Alien"  # first occurrence wins
    assert [(p.line, p.problem) for p in report.skipped] == [(3, "empty title"),
                                                             (4, "duplicate item_id '1' (first on line 2)")]
    assert "skipped 2 bad rows" in report.summary() and f"{path}:3: empty title" in report.summary()


def test_unsupported_suffix_empty_and_missing_files(tmp_path):
    with pytest.raises(CatalogError, match=r"unsupported file type '\.xlsx'"):
        load_catalog(write(tmp_path, "c.xlsx", "x"))
    with pytest.raises(CatalogError, match=r"c\.csv:1: empty file"):
        load_catalog(write(tmp_path, "c.csv", ""))
    with pytest.raises(CatalogError, match="file not found"):
        load_catalog(tmp_path / "nope.csv")
    with pytest.raises(CatalogError, match="no usable items"):
        load_catalog(write(tmp_path, "h.csv", "item_id,title\n"))


def test_interactions_join_popularity_and_reject_unknown_items(tmp_path):
    cat = write(tmp_path, "c.csv", GOOD_CSV)
    inter = write(tmp_path, "i.csv", "user_id,item_id,rating,timestamp\n"
                                     "u1,b1,5,100\nu2,b1,4,90\nu1,b2,,\nu3,b3,3.5,80\n")
    dataset, report = load_user_dataset(cat, inter)
    assert not report
    assert [it.popularity for it in dataset.catalog] == [2, 1, 1]  # popularity = interaction count
    assert dataset.interactions.user_ids == ("u1", "u2", "u3")
    assert dataset.interactions.ratings.tolist() == [5.0, 4.0, 1.0, 3.5]  # missing rating = implicit 1.0
    assert dataset.interactions.timestamps.tolist() == [100, 90, 0, 80]

    bad = write(tmp_path, "bad.csv", "user_id,item_id,rating,timestamp\n"
                                     "u1,b1,5,100\nu1,zz,5,1\nu2,b2,great,1\n,b3,1,1\nu3,b3,1,yesterday\n")
    with pytest.raises(CatalogError) as exc:
        load_interactions(bad, dataset.catalog)
    assert problems(exc) == [(3, "unknown item_id 'zz' (not in the catalog)"),
                             (4, "rating is not a number: 'great'"),
                             (5, "empty user_id"),
                             (6, "timestamp is not a number: 'yesterday'")]
    inter_ok, rep = load_interactions(bad, dataset.catalog, skip_bad_rows=True)
    assert len(inter_ok) == 1 and len(rep.skipped) == 4


def test_interactions_missing_columns(tmp_path):
    catalog, _ = load_catalog(write(tmp_path, "c.csv", GOOD_CSV))
    with pytest.raises(CatalogError, match=r"i\.csv:1: missing required column\(s\): user_id"):
        load_interactions(write(tmp_path, "i.csv", "user,item_id\nu1,b1\n"), catalog)


def test_nothing_half_loaded_when_the_interaction_log_is_bad(tmp_path):
    """A good catalog with a bad log fails as a whole (no dataset comes back at all)."""
    cat = write(tmp_path, "c.csv", GOOD_CSV)
    inter = write(tmp_path, "i.csv", "user_id,item_id\nu1,b1\nu1,missing\n")
    cfg = CatalogConfig(source=str(cat), interactions=str(inter))
    with pytest.raises(CatalogError, match="i.csv:3: unknown item_id 'missing'"):
        load_dataset(cfg, tmp_path / "home")
    dataset, report = load_dataset_with_report(cfg.model_copy(update={"skip_bad_rows": True}), tmp_path / "home")
    assert len(dataset.interactions) == 1 and [p.line for p in report.skipped] == [3]


def test_load_dataset_defaults_to_movielens_and_overlays_descriptions(tmp_path):
    home = tmp_path / "home"
    path = descriptions_path(home, "ml-100k")
    append_descriptions(path, [{"item_id": "1", "description": "Toys come alive.", "model": "m", "prompt_version": "2"}])
    append_descriptions(path, [DescriptionRecord("1", "Toys come alive when nobody looks.", model="m2")])
    dataset = load_dataset(CatalogConfig(), home)
    assert len(dataset.catalog) == 1682 and len(dataset.interactions) == 100_000
    toy = dataset.catalog["1"]
    assert toy.description == "Toys come alive when nobody looks." and toy.description_generated  # later row wins
    assert "Toys come alive when nobody looks." in toy.document()
    assert dataset.catalog["2"].description == "" and not dataset.catalog["2"].description_generated
    assert read_descriptions(path)["1"].model == "m2"


def test_malformed_description_rows_are_reported(tmp_path):
    path = tmp_path / "descriptions.jsonl"
    path.write_text('{"item_id": "1", "description": "ok"}\n{"item_id": "2"}\nnot json\n')
    with pytest.raises(CatalogError) as exc:
        read_descriptions(path)
    assert [p.line for p in exc.value.problems] == [2, 3]


def _append_many(args):
    path, worker = args
    for i in range(20):
        append_descriptions(Path(path), [DescriptionRecord(f"{worker}-{i}", f"text {worker} {i}")])


def test_concurrent_appends_lose_nothing_and_leave_no_temp_files(tmp_path):
    path = tmp_path / "catalogs" / "x" / "descriptions.jsonl"
    with multiprocessing.get_context("fork").Pool(3) as pool:
        pool.map(_append_many, [(str(path), w) for w in range(3)])
    records = read_descriptions(path)
    assert len(records) == 60 and records["2-19"].description == "text 2 19"
    assert not list(path.parent.glob("*.tmp"))
    assert np.all([line.endswith("}") for line in path.read_text().splitlines()])
