"""Stable HTTP endpoints of the chat page for `gradio_client` (and any Gradio client library).

    from gradio_client import Client
    client = Client("http://127.0.0.1:7860/")
    reply = client.predict("sci-fi and action films", "me", api_name="/chat")

API sessions live in their own namespace ("api:<session_id>"), so an API caller can never read or
change a browser tab's session (those ids are random and start with "web-"). With `--auth`, the signed-in
user (the request's username) owns the profile that a session's feedback builds (RecommenderAgent.chat).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from agent.web import views

API_QUEUE = "agent"  # the page's concurrency group: API callers and browser tabs queue together
MAX_SESSION_ID = 124  # the agent allows 128 characters, minus the "api:" prefix


def _sid(session_id: str) -> str:
    from agent.session import check_session_id

    try:
        check_session_id(session_id)
    except ValueError as err:
        raise gr.Error(str(err)) from None
    if len(session_id) > MAX_SESSION_ID:
        raise gr.Error(f"invalid session_id: at most {MAX_SESSION_ID} characters")
    return f"api:{session_id}"


def _call(fn, *args):
    """Bad input becomes a clear client-side error message instead of a server traceback."""
    try:
        return fn(*args)
    except views.UserInputError as err:
        raise gr.Error(str(err)) from None


def account_of(request: gr.Request | None) -> str | None:
    """The signed-in user of `--auth` (None without auth)."""
    return getattr(request, "username", None) or None


def register(agent: Any) -> None:
    """Add the endpoints to the Blocks being built (call inside its `with` block). Gradio fills in each
    function's `request` argument; it is not part of the HTTP API."""

    def chat(message: str, session_id: str = "default", request: gr.Request = None) -> dict:
        """One turn. Returns {"text", "items": [{item_id, title, year, genres, description, explanation,
        explanation_source, score, description_generated}], "understood", "preferences"}."""
        return _call(views.chat_turn, agent, _sid(session_id), message, account_of(request))

    def chat_stream(message: str, session_id: str = "default", request: gr.Request = None) -> Iterator[dict]:
        """The same turn, streamed: each update is {"text": the reply so far, "items": [] until they arrive}.
        Use `client.submit(...)` and iterate the job."""
        sid = _sid(session_id)
        text, items = "", []
        try:
            for kind, payload in views.stream_turn(agent, sid, message, account_of(request)):
                if kind == "text":
                    text += payload
                else:
                    items = payload
                yield {"text": text, "items": items}
        except views.UserInputError as err:
            raise gr.Error(str(err)) from None

    def feedback(session_id: str, item_id: str, action: str, request: gr.Request = None) -> dict:
        """action: "like" | "dislike" | "seen". Returns the session's preferences afterwards."""
        return _call(views.feedback, agent, _sid(session_id), item_id, action, account_of(request))

    def preferences(session_id: str) -> dict:
        """What the agent understood so far: genres, exclude_genres, year_min, year_max, count, query, moods,
        liked / disliked / seen ([{item_id, title}]), turns."""
        return _call(views.preferences, agent, _sid(session_id))

    def set_preferences(session_id: str, preferences: dict) -> dict:
        """Overwrite any of genres, exclude_genres, year_min, year_max, count (null clears years / count);
        the next turn obeys them. Returns the preferences afterwards."""
        return _call(views.apply_preferences, agent, _sid(session_id), preferences)

    def reset(session_id: str) -> dict:
        """Forget the session's preferences and shown items."""
        return _call(views.reset, agent, _sid(session_id))

    for fn in (chat, chat_stream, feedback, preferences, set_preferences, reset):
        gr.api(fn, api_name=fn.__name__, concurrency_id=API_QUEUE)
