"""A hostile catalog in the real page: titles, descriptions and genres full of Markdown, LaTeX and HTML are
shown as written, nothing is fetched from outside, and the page works under its Content-Security-Policy."""
from __future__ import annotations

import csv

import pytest

from benchmarks.web_driver import ChatPage, ServerProcess, is_local

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OUTSIDE = "203.0.113.9"  # TEST-NET-3: never routed; any request to it is a leak
HOSTILE_TITLES = [f"![pixel](http://{OUTSIDE}/pixel.png)",
                  rf"$$\href{{http://{OUTSIDE}/x}}{{\color{{red}}{{click}}}}$$",
                  f"<img src=http://{OUTSIDE}/i.png> Picture",
                  f"[link](http://{OUTSIDE}/) **bold** _it_"]
HOSTILE_GENRE = f"![g](http://{OUTSIDE}/g.png)"


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory, artifacts_dir):
    root = tmp_path_factory.mktemp("hostile")
    catalog = root / "hostile.csv"
    with catalog.open("w", newline="", encoding="utf-8") as f:
        rows = csv.writer(f)
        rows.writerow(["item_id", "title", "year", "genres", "description"])
        for n, title in enumerate(HOSTILE_TITLES):
            rows.writerow([f"h{n}", title, 1990 + n, f"Comedy|{HOSTILE_GENRE}",
                           f"A comedy. ![d](http://{OUTSIDE}/d{n}.png) $$x^{n}$$ <b>bold</b>"])
        for n in range(6):  # with the 4 hostile ones, 10 comedies: all fit in one reply
            rows.writerow([f"p{n}", f"Plain Comedy {n}", 1980 + n, "Comedy", "A plain comedy."])
    env = {"MARQUEE_CATALOG__SOURCE": str(catalog), "MARQUEE_AGENT__RERANK": "false",
           "MARQUEE_AGENT__EXPLAIN": "template"}
    with ServerProcess(root / "home", log_path=artifacts_dir / "web-hostile.log", env=env,
                       ready_timeout=900) as server:
        yield server


def test_markup_in_the_catalog_is_shown_literally_and_loads_nothing(browser, hostile_server, artifacts_dir):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    requests, console = [], []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    page.on("console", lambda message: console.append(message.text))
    try:
        chat = ChatPage(page, hostile_server.url).open()
        cards = chat.send("10 comedies please")
        shown = {card["title"] for card in cards}
        assert set(HOSTILE_TITLES) <= shown, shown  # the card titles, character for character
        reply = chat.bot_messages()[-1]
        for title in HOSTILE_TITLES:
            assert title in reply, f"{title!r} is not shown literally in the chat: {reply[:500]!r}"
        hostile = next(card for card in cards if card["title"] == HOSTILE_TITLES[0])
        chat.feedback(hostile["item_id"], "like")
        assert HOSTILE_TITLES[0] in page.inner_text("#mq-understood")
        assert page.locator(f"img[src*='{OUTSIDE}'], a[href*='{OUTSIDE}']").count() == 0
        assert page.locator("#mq-chatbot .katex, .mq-card .katex").count() == 0, "LaTeX was rendered"
        assert page.locator("#mq-chatbot strong, #mq-chatbot em").count() == 0, "Markdown was rendered"
        page.screenshot(path=str(artifacts_dir / "web-hostile.png"), full_page=True)
    finally:
        context.close()
    outside = sorted({url for url in requests if not is_local(url)})
    assert not outside, f"the page contacted hosts outside localhost: {outside}"
    blocked = [text for text in console if "Content Security Policy" in text]
    assert not blocked, f"the page needed something its policy forbids: {blocked[:3]}"
