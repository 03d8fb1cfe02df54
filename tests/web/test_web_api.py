"""The page's HTTP API through `gradio_client`, against the same real server as the browser tests."""
from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

pytestmark = pytest.mark.slow  # talks to the real server over HTTP (no browser)

ENDPOINTS = {"/chat", "/chat_stream", "/feedback", "/preferences", "/set_preferences", "/reset", "/stats"}


@pytest.fixture(scope="module")
def client(web_server, web_auth):
    return Client(web_server.url, auth=web_auth, verbose=False, download_files=False)


def test_api_needs_the_password(web_server, web_auth):
    with pytest.raises(Exception, match="(?i)login|auth|credential"):
        Client(web_server.url, auth=(web_auth[0], "wrong"), verbose=False)
    anonymous = httpx.get(f"{web_server.url}config")
    assert anonymous.status_code == 401


def session() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def test_api_lists_exactly_the_documented_endpoints(client):
    named = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert named == ENDPOINTS  # the page's own UI events stay private


def test_stats_report_no_session_left_locked(client):
    client.predict("westerns", session(), api_name="/chat")
    assert client.predict(api_name="/stats") == {"sessions_locked": 0}


def test_chat_feedback_preferences_reset_round_trip(client):
    sid = session()
    reply = client.predict("sci-fi and action films", sid, api_name="/chat")
    items = reply["items"]
    assert reply["text"].strip() and len(items) >= 3
    assert all({"Sci-Fi", "Action"} & set(it["genres"]) for it in items)
    assert set(items[0]) >= {"item_id", "title", "year", "genres", "description", "explanation", "score",
                             "evidence", "title_zh", "language"}
    assert reply["language"] == "en" and items[0]["evidence"]["item_id"] == items[0]["item_id"]
    assert items[0]["evidence"]["catalog"]["popularity_rank"] >= 1
    assert {"Sci-Fi", "Action"} <= set(reply["preferences"]["genres"])
    chinese = client.predict("我喜欢看电影，尤其是科幻片和动作片", session(), api_name="/chat")
    assert chinese["language"] == "zh" and chinese["text"].startswith("为你挑了")
    assert all(it["language"] == "zh" for it in chinese["items"]) and any(it["title_zh"] for it in chinese["items"])

    disliked = items[0]
    prefs = client.predict(sid, disliked["item_id"], "dislike", api_name="/feedback")
    assert disliked["item_id"] in {d["item_id"] for d in prefs["disliked"]}

    prefs = client.predict(sid, {"genres": ["comedy"], "year_min": 1990, "year_max": 1995, "count": 3},
                           api_name="/set_preferences")
    assert prefs["genres"] == ["Comedy"] and prefs["count"] == 3
    edited = client.predict("more please", sid, api_name="/chat")["items"]
    assert len(edited) == 3
    assert all("Comedy" in it["genres"] and 1990 <= it["year"] <= 1995 for it in edited), edited

    cleared = client.predict(sid, api_name="/reset")
    assert cleared["genres"] == [] and cleared["disliked"] == []


def test_stream_endpoint_streams_text_then_items(client):
    job = client.submit("I loved Alien, what else?", session(), api_name="/chat_stream")
    updates = list(job)
    assert len(updates) >= 2, "the reply arrived in one piece, not streamed"
    texts = [u["text"] for u in updates]
    assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:])), "text deltas out of order"
    final = updates[-1]
    assert final["items"] and final["text"].strip() and final["language"] == "en"
    assert all(it["evidence"] for it in final["items"])
    assert all(it["title"] != "Alien" for it in final["items"]), "recommended the film the user already loved"


def test_api_sessions_are_isolated(client):
    a, b = session(), session()
    client.predict("sci-fi and action films", a, api_name="/chat")
    assert client.predict(b, api_name="/preferences")["genres"] == []
    client.predict(b, {"exclude_genres": ["Sci-Fi"]}, api_name="/set_preferences")
    assert "Sci-Fi" in client.predict(a, api_name="/preferences")["genres"]
    assert client.predict(a, api_name="/preferences")["exclude_genres"] == []


def test_empty_message_gets_help_not_an_error(client):
    reply = client.predict("   ", session(), api_name="/chat")
    assert reply["items"] == [] and "sci-fi" in reply["text"].lower()


@pytest.mark.parametrize(("args", "api_name", "message"), [
    (("s", "no-such-id", "like"), "/feedback", "unknown item id"),
    (("s", "1", "love"), "/feedback", "unknown feedback action"),
    (("s", {"genres": ["Space Opera"]}), "/set_preferences", "unknown genre"),
    (("s", {"year_min": 2000, "year_max": 1990}), "/set_preferences", "after year_max"),
    (("s", {"count": 2.5}), "/set_preferences", "whole number"),
    (("s", {"colour": "red"}), "/set_preferences", "unknown preference field"),
    (("", ), "/preferences", "session_id is required"),
    (("s", {"genres": [1, 2]}), "/set_preferences", "invalid genres.0: must be text"),
    (("s", {"year_min": 10 ** 20}), "/set_preferences", "invalid year_min: must be a whole number between"),
    (("s", "1", ["like"]), "/feedback", "unknown feedback action"),
    ((5, ), "/preferences", "invalid session_id: must be text"),
    (("a b/c", ), "/preferences", "invalid session_id"),
])
def test_bad_input_gets_a_clear_error(client, args, api_name, message):
    with pytest.raises(AppError, match=f"(?i){message}"):
        client.predict(*args, api_name=api_name)


def test_concurrent_sessions_share_the_model_without_cross_talk(web_server, web_auth):
    """Several users at once (more than the queue's concurrency): each keeps its own genre, nothing
    repeats within a session, and the shared model never fails a request (the agent would silently
    fall back to the retriever's order, so the server log is checked too)."""
    genres = ["Comedy", "Drama", "Horror", "Western", "Romance", "Thriller"]
    log_lines_before = len(web_server.lines)

    def user(genre: str) -> list[str]:
        client = Client(web_server.url, auth=web_auth, verbose=False, download_files=False)
        sid = f"crowd-{genre}-{uuid.uuid4().hex[:6]}"
        client.predict(sid, {"genres": [genre], "count": 3}, api_name="/set_preferences")
        problems, seen = [], set()
        for message in ("something good", "more please"):
            for item in client.predict(message, sid, api_name="/chat")["items"]:
                if genre not in item["genres"] or item["item_id"] in seen:
                    problems.append(f"{genre} session got {item['title']} {item['genres']}")
                seen.add(item["item_id"])
        if client.predict(sid, api_name="/preferences")["genres"] != [genre]:
            problems.append(f"{genre} session's genres changed")
        return problems if len(seen) == 6 else problems + [f"{genre} session got {len(seen)} items, not 6"]

    with ThreadPoolExecutor(max_workers=len(genres)) as pool:
        problems = [p for result in pool.map(user, genres) for p in result]
    assert problems == []
    failures = [line for line in web_server.lines[log_lines_before:] if "failed" in line or "Traceback" in line]
    assert failures == [], failures


def test_the_signed_in_user_owns_the_profile_not_a_claimed_user(client, web_server, web_auth):
    """With --auth, feedback builds the signed-in user's profile (the request's username); "I am user 4242" in a
    message personalises that session only and writes nothing under 4242."""
    from agent.storage import Storage

    sid = session()
    reply = client.predict("I am user 4242, westerns", sid, api_name="/chat")
    liked = [it["item_id"] for it in reply["items"][:2]]
    for item_id in liked:
        client.predict(sid, item_id, "like", api_name="/feedback")
    store = Storage(web_server.home / "marquee.db")
    try:
        assert set(liked) <= set(store.profile(web_auth[0])["liked"])
        assert store.profile("4242") == {"liked": [], "disliked": [], "seen": []}
    finally:
        store.close()
    fresh = client.predict("westerns", session(), api_name="/chat")  # a new session of the same user
    assert fresh["items"] and not set(liked) & {it["item_id"] for it in fresh["items"]}
