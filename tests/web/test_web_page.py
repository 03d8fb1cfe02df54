"""The chat page in headless Chromium against a real `marquee serve` (real agent, index and model)."""
from __future__ import annotations

import statistics

import pytest

from benchmarks.web_driver import ChatPage, is_local

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCIFI_ACTION = {"Sci-Fi", "Action"}


def assert_all_local(requests: list[str]) -> None:
    assert requests, "the page made no requests at all (recording is broken)"
    outside = sorted({url for url in requests if not is_local(url)})
    assert not outside, f"the page contacted hosts outside localhost: {outside}"


def open_chat(new_context, web_server, **options) -> tuple[ChatPage, list[str]]:
    ctx = new_context(**options)
    return ChatPage(ctx.new_page(), web_server.url).open(), ctx.requests


def test_scifi_action_then_dislike_and_older(new_context, web_server, artifacts_dir):
    chat, requests = open_chat(new_context, web_server, viewport={"width": 1280, "height": 900})

    first = chat.send("sci-fi and action films")
    assert len(first) >= 3, first
    assert all(SCIFI_ACTION & set(card["genres"]) for card in first), first
    assert any(text.strip() for text in chat.bot_messages()), "no streamed reply text"
    assert {"Sci-Fi", "Action"} <= set(chat.selected_genres("in")), "panel does not show the understood genres"

    disliked = first[0]
    chat.feedback(disliked["item_id"], "dislike")
    assert disliked["title"] in chat.page.inner_text("#mq-understood"), "the dislike is not listed in the panel"

    older = chat.send("something older")
    assert older, "no cards after 'something older'"
    assert disliked["item_id"] not in {card["item_id"] for card in older}
    old_years = [c["year"] for c in first if c["year"]]
    new_years = [c["year"] for c in older if c["year"]]
    assert statistics.fmean(new_years) < statistics.fmean(old_years), (old_years, new_years)
    assert max(new_years) <= max(old_years), (old_years, new_years)
    assert all(SCIFI_ACTION & set(card["genres"]) for card in older), "the genre preference was lost"

    chat.page.screenshot(path=str(artifacts_dir / "web-desktop.png"), full_page=True)
    assert_all_local(requests)


def test_two_browser_contexts_do_not_share_state(new_context, web_server):
    alice, alice_requests = open_chat(new_context, web_server)
    bob, bob_requests = open_chat(new_context, web_server)

    alice_cards = alice.send("sci-fi and action films")
    assert alice_cards
    assert bob.cards() == [], "a fresh visitor sees someone else's cards"
    assert bob.selected_genres("in") == []

    bob_cards = bob.send("romantic comedies")
    assert bob_cards and all("Romance" in c["genres"] or "Comedy" in c["genres"] for c in bob_cards), bob_cards
    assert alice.cards() == alice_cards, "another visitor's turn changed this page"
    assert set(alice.selected_genres("in")) == SCIFI_ACTION

    alice_next = alice.send("more please")
    assert all(SCIFI_ACTION & set(c["genres"]) for c in alice_next), "Bob's genres leaked into Alice's session"
    assert not {c["item_id"] for c in alice_next} & {c["item_id"] for c in alice_cards}, "repeats in Alice's list"
    assert_all_local(alice_requests + bob_requests)


def test_edited_preferences_change_the_next_answer(new_context, web_server):
    chat, requests = open_chat(new_context, web_server)
    first = chat.send("sci-fi and action films")
    assert first

    chat.set_preferences(genres=["Comedy"], year_min=1990, year_max=1995, count=3)
    assert chat.selected_genres("in") == ["Comedy"]

    edited = chat.send("more please")
    assert len(edited) == 3, edited
    assert all("Comedy" in c["genres"] for c in edited), edited
    assert all(c["year"] and 1990 <= c["year"] <= 1995 for c in edited), edited
    assert_all_local(requests)


def test_phone_width_has_no_horizontal_overflow(new_context, web_server, artifacts_dir):
    chat, requests = open_chat(new_context, web_server, viewport={"width": 390, "height": 844},
                               device_scale_factor=2, is_mobile=True, has_touch=True)
    assert chat.horizontal_overflow() == 0
    cards = chat.send("我喜欢看电影，尤其是科幻片和动作片")
    assert cards and all(SCIFI_ACTION & set(c["genres"]) for c in cards), cards
    assert chat.horizontal_overflow() == 0, "the page scrolls sideways at 390 px"
    for selector in ("#mq-chatbot", "#mq-input textarea", "#mq-send", ".mq-card"):
        box = chat.page.locator(selector).first.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390 + 0.5, (selector, box)
    chat.page.screenshot(path=str(artifacts_dir / "web-phone.png"), full_page=True)
    assert_all_local(requests)


def test_reset_and_bad_input_are_handled_on_the_page(new_context, web_server):
    chat, requests = open_chat(new_context, web_server)
    assert chat.send("sci-fi and action films")
    chat.page.locator("#mq-reset").click()
    chat.page.wait_for_selector("#mq-cards-empty .mq-empty")
    assert chat.cards() == [] and chat.selected_genres("in") == []

    chat.send("sci-fi " + "x" * 10_000)  # far too long: read in part, with a note; never a traceback
    reply = chat.bot_messages()[-1]
    assert "long" in reply and "Traceback" not in reply, reply[-300:]
    assert_all_local(requests)


def test_login_form_guards_the_page(new_context, web_server, web_auth):
    visitor = new_context(login=False)
    page = visitor.new_page()
    page.goto(web_server.url)
    password = page.locator("input[type='password']")
    password.wait_for()
    assert page.locator("#mq-input").count() == 0, "the chat is visible before logging in"

    user_box = page.locator("input:not([type='password'])").first
    user_box.fill(web_auth[0])
    password.fill("not-the-password")
    page.get_by_role("button", name="Login").click()
    page.get_by_text("Incorrect credentials").wait_for()

    user_box.fill(web_auth[0])  # the form clears itself after a failed attempt
    password.fill(web_auth[1])
    page.get_by_role("button", name="Login").click()
    page.wait_for_selector("#mq-input textarea")
    assert_all_local(visitor.requests)


def test_panel_works_before_the_first_message(new_context, web_server):
    chat, requests = open_chat(new_context, web_server)
    chat.set_preferences(genres=["Western"], count=2)  # the year boxes stay empty: no year limits
    cards = chat.send("something good")
    assert len(cards) == 2 and all("Western" in c["genres"] for c in cards), cards
    assert chat.page.locator("#mq-year-min input").input_value() == ""
    assert_all_local(requests)
