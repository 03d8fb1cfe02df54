"""Every pick carries its evidence as data, and a reply is written in the language of its message
(the issue's Chinese examples get Chinese replies; English stays English)."""
from __future__ import annotations

import re

import pytest

from agent.chat_eval import in_language, shared_phrases
from agent.replies import Reply
from retrieval.evidence import numbers_in

CJK = re.compile(r"[\u4e00-\u9fff]")
ISSUE_ZH = ["我喜欢看电影，尤其是科幻片和动作片", "90年代的爱情片，五部", "不要恐怖片", "类似泰坦尼克号的电影"]


@pytest.mark.parametrize("message", ISSUE_ZH)
def test_the_issues_chinese_examples_get_chinese_replies(agent, sid, message):
    reply = agent.chat(message, session_id=sid)
    assert reply.language == "zh" and reply.items
    header, *_ = reply.text.split("\n")
    assert header.startswith("为你挑了") and CJK.search(reply.understood)
    assert "我理解的是：" in reply.text and "I understood" not in reply.text
    for item in reply.items:
        # the explanation is Chinese: once titles are taken out, no English word is left
        without_titles = item.explanation
        for label in [item.label, *(label for _, label in item.evidence.titles())]:
            without_titles = without_titles.replace(label, "")
        assert CJK.search(item.explanation) and not re.search(r"[A-Za-z]{2,}", without_titles), item.explanation
        if item.title_zh:  # the catalog title, then the Chinese name
            assert f"{item.label}《{item.title_zh}》" in reply.text
    assert sum(bool(i.title_zh) for i in reply.items) >= 2  # the alias table knows the most-rated titles
    assert in_language(reply, "zh") and not shared_phrases(reply.items)


def test_chinese_notes_and_understanding(agent, sid):
    reply = agent.chat("我看过Zorblax Quintessence 9，推荐点别的", session_id=sid)
    assert "片库里没有找到“Zorblax Quintessence 9”" in reply.text and reply.notes == [reply.notes[0]]
    nothing = agent.chat("30年代的西部片，十部", session_id=sid)
    assert not nothing.items and nothing.text.startswith("没有找到") and "片库里没有同时满足" in nothing.text
    assert nothing.understood == "西部；1930年代；10部"
    like = agent.chat("类似泰坦尼克号的电影", session_id=f"{sid}-b")
    assert like.understood == "更多像Titanic (1997)《泰坦尼克号》的电影"


@pytest.mark.parametrize("message", ["sci-fi and action films", "more like heat", "I am user 196"])
def test_english_stays_english(agent, sid, message):
    reply = agent.chat(message, session_id=sid)
    assert reply.language == "en" and reply.items and not CJK.search(reply.text + reply.understood)
    assert all(not i.title_zh or i.title_zh not in reply.text for i in reply.items)
    assert not shared_phrases(reply.items)


def test_every_pick_carries_its_evidence_from_the_log(agent, sid):
    reply = agent.chat("more like heat", session_id=sid)
    log = agent.service.evidence
    heat = next(it for it in agent.catalog if it.label == "Heat (1995)")
    cite_heat = 0
    for item in reply.items:
        ev = item.evidence
        index = agent.catalog.index_of(item.item_id)
        assert ev.item_id == item.item_id and ev.catalog == log.stats(index)
        assert ev.signals and [s.score for s in ev.signals] == sorted((s.score for s in ev.signals), reverse=True)
        for c in ev.connections:
            (again,) = log.connections([index], [(agent.catalog.index_of(c.item_id), c.relation)])
            assert again == [c]  # the reply's numbers are the log's
        cite_heat += any(c.item_id == heat.item_id and c.relation == "anchor" for c in ev.connections)
        # the explanation states the strongest piece, and only numbers the evidence holds
        assert numbers_in(item.explanation.replace(heat.label, "")) <= ev.numbers()
    assert cite_heat >= len(reply.items) // 2
    first = reply.items[0]
    assert heat.label in first.explanation and first.evidence.connections[0].item_id == heat.item_id


def test_a_known_users_picks_connect_to_titles_they_loved(agent, sid):
    reply = agent.chat("I am user 196", session_id=sid)
    loved = {agent.catalog.at(i).item_id for i in agent.service.evidence.loved_by("196")}
    connections = [c for i in reply.items for c in i.evidence.connections]
    assert connections and all(c.relation == "history" and c.item_id in loved for c in connections)
    leads = [i.evidence.connections[0].item_id for i in reply.items if i.evidence.connections]
    assert len(set(leads)) == len(leads)  # spread: each pick leads with a different title of the history


def test_evidence_is_part_of_the_json_reply(agent, sid):
    reply = agent.chat("90年代的爱情片，五部", session_id=sid)
    again = Reply.model_validate_json(reply.model_dump_json())
    assert again == reply and again.items[0].evidence.satisfies.year_min == 1990
    assert again.items[0].evidence.satisfies.genres == ["Romance"]
