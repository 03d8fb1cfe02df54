"""Stable HTTP endpoints of the chat page for `gradio_client` (and any Gradio client library).

    from gradio_client import Client
    client = Client("http://127.0.0.1:7860/")
    reply = client.predict("sci-fi and action films", uuid.uuid4().hex, api_name="/chat")

Sessions: there is no shared default. `/chat` and `/chat_stream` without a session id start a fresh,
random one and return it (`reply["session_id"]`); every other endpoint requires the id. API sessions
live in their own namespace ("api:<session_id>"), so an API caller can never read or change a browser
tab's session (those ids are random and start with "web-"). With `--auth`, the signed-in user (the
request's username) owns the profile that a session's feedback builds (RecommenderAgent.chat).

Arguments are checked by `agent.validation` (the same rules as the Python API); a bad one is a
`gr.Error` whose message says what to change, and the server log stays free of tracebacks for it.
"""
from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import gradio as gr

from agent.validation import MAX_ID_CHARS, InputError, SessionRequest, validate
from agent.web import views

ENDPOINTS = ("chat", "chat_stream", "feedback", "preferences", "set_preferences", "reset")
API_QUEUE = "agent"  # the page's concurrency group: API callers and browser tabs queue together
PREFIX = "api:"
MAX_SESSION_ID = MAX_ID_CHARS - len(PREFIX)  # the prefixed id must still be a valid agent id
REQUIRED = ("session_id is required: pass the session_id your first /chat reply returned "
            "(or a random id of your own, e.g. uuid.uuid4().hex)")


def user_error(message: str) -> gr.Error:
    """A client error: shown to the caller, not logged with a traceback (it is not a server fault)."""
    return gr.Error(message, print_exception=False)


def _sid(session_id: Any, new: bool = False) -> tuple[str, str]:
    """(the caller's id, the agent's "api:" id); `new`: a missing id starts a fresh random session."""
    if session_id is None or session_id == "":
        if not new:
            raise user_error(REQUIRED)
        session_id = uuid.uuid4().hex
    try:
        validate(SessionRequest, {"session_id": session_id})
    except InputError as err:
        raise user_error(str(err)) from None
    if len(session_id) > MAX_SESSION_ID:
        raise user_error(f"invalid session_id: at most {MAX_SESSION_ID} characters, got {len(session_id)}")
    return session_id, PREFIX + session_id


def _call(fn, *args):
    """Bad input becomes a clear client-side error message instead of a server traceback."""
    try:
        return fn(*args)
    except views.UserInputError as err:
        raise user_error(str(err)) from None


def account_of(request: gr.Request | None) -> str | None:
    """The signed-in user of `--auth` (None without auth)."""
    return getattr(request, "username", None) or None


def register(agent: Any) -> None:
    """Add the endpoints to the Blocks being built (call inside its `with` block). Gradio fills in each
    function's `request` argument; it is not part of the HTTP API."""

    def chat(message: str, session_id: str | None = None, request: gr.Request = None) -> dict:
        """One turn. Returns {"session_id", "text", "items": [{item_id, title, title_zh, year, genres, description,
        explanation, explanation_source, score, evidence, description_generated, language}], "understood",
        "preferences", "language"} ("language": "en" | "zh", the language of the message and of the reply;
        "evidence": why the item was picked, retrieval/evidence.py). Without a session_id a new session starts;
        keep the returned one for the next turns."""
        own, sid = _sid(session_id, new=True)
        return {"session_id": own, **_call(views.chat_turn, agent, sid, message, account_of(request))}

    def chat_stream(message: str, session_id: str | None = None, request: gr.Request = None) -> Iterator[dict]:
        """The same turn, streamed: each update is {"session_id", "text": the reply so far, "items": [] until
        they arrive, "language": "" until then}. Use `client.submit(...)` and iterate the job."""
        own, sid = _sid(session_id, new=True)
        text, items, language = "", [], ""
        try:
            for kind, payload in views.stream_turn(agent, sid, message, account_of(request)):
                if kind == "text":
                    text += payload
                elif kind == "language":
                    language = payload
                    continue
                else:
                    items = payload
                yield {"session_id": own, "text": text, "items": items, "language": language}
        except views.UserInputError as err:
            raise user_error(str(err)) from None

    def feedback(session_id: str, item_id: str, action: str, request: gr.Request = None) -> dict:
        """action: "like" | "dislike" | "seen". Returns the session's preferences afterwards."""
        return _call(views.feedback, agent, _sid(session_id)[1], item_id, action, account_of(request))

    def preferences(session_id: str) -> dict:
        """What the agent understood so far: genres, exclude_genres, year_min, year_max, count, query, moods,
        liked / disliked / seen ([{item_id, title}]), turns."""
        return _call(views.preferences, agent, _sid(session_id)[1])

    def set_preferences(session_id: str, preferences: dict) -> dict:
        """Overwrite any of genres, exclude_genres, year_min, year_max, count (null clears years / count);
        the next turn obeys them. Returns the preferences afterwards."""
        return _call(views.apply_preferences, agent, _sid(session_id)[1], preferences)

    def reset(session_id: str) -> dict:
        """Forget the session's preferences and shown items."""
        return _call(views.reset, agent, _sid(session_id)[1])

    def stats() -> dict:
        """The server's memory bookkeeping: {"sessions_locked"} (sessions live in the database, not in memory)."""
        return agent.stats()

    for fn in (chat, chat_stream, feedback, preferences, set_preferences, reset, stats):
        gr.api(fn, api_name=fn.__name__, concurrency_id=API_QUEUE)


_CALL = re.compile(r"^/gradio_api/(?:call|run|api)/([^/]+)/?$")
_JOIN = "/gradio_api/queue/join"


class MissingArguments:
    """ASGI middleware: a raw HTTP call to one of ENDPOINTS that leaves out trailing arguments gets them as
    null, so the endpoint answers for itself (a fresh session for /chat, "session_id is required"
    elsewhere) instead of Gradio failing the event with a server-side traceback. `gradio_client` always
    sends every argument; this is for `curl` and other plain HTTP clients."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] != "http" or scope.get("method") != "POST" or not (path == _JOIN or _CALL.match(path)):
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")  # bounded: agent.web.guard.HttpGuard runs first
            more = message.get("more_body", False)
        body = _padded(scope, body)
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        sent = False

        async def receive_once():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app({**scope, "headers": headers}, receive_once, send)


def _padded(scope, body: bytes) -> bytes:
    try:
        payload = json.loads(body)
    except ValueError:
        return body  # Gradio answers 422 itself
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        return body
    match = _CALL.match(scope["path"])
    fns = scope["app"].get_blocks().fns
    if match:
        fn = next((f for f in fns.values() if f.api_name == match.group(1)), None)
    else:
        fn = fns.get(payload.get("fn_index")) if isinstance(payload.get("fn_index"), int) else None
    if fn is None or fn.api_name not in ENDPOINTS or len(payload["data"]) >= len(fn.inputs):
        return body
    payload["data"] = payload["data"] + [None] * (len(fn.inputs) - len(payload["data"]))
    return json.dumps(payload).encode()
