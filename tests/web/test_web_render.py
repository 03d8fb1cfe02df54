"""Card and panel HTML: catalog and LLM text is escaped, the data attributes the page relies on are right."""
from __future__ import annotations

from agent.web.render import card_html, understood_html

HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


def test_card_escapes_every_text_field():
    html = card_html({"item_id": '1" onmouseover="x', "title": HOSTILE, "year": 1979, "genres": [HOSTILE, "Sci-Fi"],
                      "description": HOSTILE, "explanation": HOSTILE, "score": 0.5}, status="liked")
    assert "<script>" not in html and "<img" not in html
    assert 'onmouseover="x' not in html  # attribute values cannot be broken out of
    assert html.count("&lt;script&gt;") == 5  # title, chip, data-genres, description, explanation
    assert 'data-year="1979"' in html and 'data-status="liked"' in html
    assert "You liked this" in html


def test_card_shows_facts_and_omits_missing_parts():
    html = card_html({"item_id": "7", "title": "Alien", "year": None, "genres": ["Horror", "Sci-Fi"],
                      "description": "", "explanation": "Dark, tense sci-fi.", "score": 1.23456})
    assert 'data-genres="Horror|Sci-Fi"' in html and 'data-year=""' in html
    assert "mq-year" not in html and "mq-desc" not in html  # no empty year badge / description
    assert "score 1.23" in html and "Dark, tense sci-fi." in html


def test_understood_panel_escapes_titles_and_counts_turns():
    html = understood_html({"query": HOSTILE, "liked": [{"item_id": "1", "title": HOSTILE}], "disliked": [],
                            "seen": [{"item_id": "2", "title": "Alien (1979)"}]}, turns=3)
    assert "<script>" not in html and html.count("&lt;script&gt;") == 2 and 'data-turns="3"' in html
    assert "Alien (1979)" in html


def test_card_shows_the_evidence_in_one_safe_line_in_the_replys_language():
    evidence = {"connections": [{"item_id": "9", "title": HOSTILE, "relation": "anchor", "measure": "loved",
                                 "fans": 1180, "also": 732, "percent": 62}],
                "catalog": {"rating_mean": 4.36, "rating_count": 583, "rating_scale": 5, "popularity_rank": 1,
                            "catalog_size": 1682}}
    item = {"item_id": "50", "title": "Star Wars", "title_zh": "星球大战", "year": 1977, "genres": ["Sci-Fi"],
            "explanation": "x", "evidence": evidence}
    html = card_html({**item, "language": "en"})
    assert "<script>" not in html and 'lang="en"' in html and "<strong>Why:</strong>" in html
    assert "62% of 1,180 fans of &lt;img" in html and "★ 4.4/5 from 583 ratings" in html and "#1 of 1,682" in html
    assert "星球大战" not in html  # the Chinese name belongs to Chinese replies
    zh = card_html({**item, "language": "zh"})
    assert 'lang="zh"' in zh and "推荐理由：" in zh and "《星球大战》" in zh and "1,180位影迷中62%也喜欢它" in zh
    few = {**evidence, "connections": [], "catalog": {**evidence["catalog"], "rating_count": 3}}
    assert "★" not in card_html({**item, "evidence": few})  # a mean of three ratings is not worth a star
    assert "mq-evidence" not in card_html({**item, "evidence": None})


def test_chat_text_is_escaped_with_its_line_breaks_and_no_markup_survives():
    from agent.web.render import status_html, text_html

    html = text_html("1. ![x](http://h/p.png) <img src=x>\n2. $$\\href{http://h}{x}$$ & more")
    assert html == ("1. ![x](http://h/p.png) &lt;img src=x&gt;<br>2. $$\\href{http://h}{x}$$ &amp; more")
    assert "<img" not in status_html('⚠️ unknown genre "<img src=x>"')
