"""Reply wording as data (prompts/reply_en.toml, prompts/reply_zh.toml through agent/locale.py)."""
from __future__ import annotations

import string

import pytest

import prompts
from agent.locale import Locale, Note, strings
from agent.understanding.model import Preferences, TitleRef


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_languages_have_the_same_strings_and_fields():
    en, zh = strings("en"), strings("zh")
    for section in en:
        if section == "genres":
            continue
        assert set(en[section]) == set(zh[section]), section
        for key in en[section]:
            # the code passes the same fields in both languages; one may leave a field out (English replies do
            # not show Chinese names), so each string must format with the fields of both
            fields = dict.fromkeys(_fields(en[section][key]) | _fields(zh[section][key]), "x")
            en[section][key].format(**fields), zh[section][key].format(**fields)  # no KeyError
            assert _fields(en[section][key]) <= _fields(zh[section][key]), (section, key)
    assert set(zh) == set(en)
    with pytest.raises(ValueError, match="language must be one of en, zh"):
        strings("fr")
    with pytest.raises(FileNotFoundError, match="no table named 'nope'"):
        prompts.load_table("nope")


def test_every_catalog_genre_has_a_chinese_name(catalog):
    zh = Locale("zh")
    assert all(zh.genre(g) != g for g in catalog.genres())
    assert Locale("en").genre("Sci-Fi") == "Sci-Fi" and zh.genre("Sci-Fi") == "科幻"


def test_years_titles_headers_and_notes_in_each_language():
    en, zh = Locale("en", {"50": "星球大战"}), Locale("zh", {"50": "星球大战"})
    assert [en.years(1990, 1999), en.years(1985, 1992), en.years(None, 1979), en.years(1990, None)] == [
        "from the 1990s", "1985–1992", "up to 1979", "from 1990 on"]
    assert [zh.years(1990, 1999), zh.years(1985, 1992), zh.years(None, 1979), zh.years(1990, 1990)] == [
        "1990年代", "1985–1992年", "1979年以前", "1990年"]
    assert en.title("50", "Star Wars (1977)") == "Star Wars (1977)"  # English replies keep the catalog title only
    assert zh.title("50", "Star Wars (1977)") == "Star Wars (1977)《星球大战》" and zh.title("1", "X") == "X"
    assert en.header(3, ["Comedy"], False, 1980, 1989) == "Here are 3 comedy picks from the 1980s:"
    assert en.header(1, [], True, None, None) == "Here is 1 personal pick:"
    assert zh.header(5, ["Sci-Fi", "Action"], False, None, None) == "为你挑了5部科幻/动作片："
    assert zh.header(2, [], False, 1990, 1999) == "为你挑了2部电影（1990年代）："
    assert zh.header(0, [], False, None, None) == "没有找到符合条件的电影。"
    assert en.note(Note("only_some", {"n": 3})) == "Only 3 titles in the catalog match everything you asked for."
    assert zh.note(Note("max_count", {"n": 10})) == "我一次最多推荐10部。"


def test_what_i_understood_in_chinese():
    p = Preferences(genres=["Romance", "Comedy"], genre_mode="all", exclude_genres=["Horror"], year_min=1990,
                    year_max=1999, count=5, moods=["轻松"], language="zh",
                    titles=[TitleRef(item_id="1", title="Titanic (1997)", mention="泰坦尼克号", relation="anchor",
                                     score=100)])
    zh = Locale("zh", {"1": "泰坦尼克号"})
    assert p.summary(zh) == "爱情+喜剧；不要恐怖；1990年代；心情：轻松；更多像Titanic (1997)《泰坦尼克号》的电影；5部"
    assert p.summary() == ("Romance + Comedy; no Horror; from the 1990s; mood: 轻松; more like Titanic (1997); "
                           "5 picks")
