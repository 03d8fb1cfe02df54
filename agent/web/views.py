"""The page's view of `RecommenderAgent`: plain, JSON-ready dicts in and out.

The Blocks handlers (agent.web.app) and the HTTP API (agent.web.api) both go through these functions,
so the browser and `gradio_client` see exactly the same behaviour. Preferences use the agent's own
field names (`RecommenderAgent.describe`): genres, exclude_genres, year_min, year_max, count, and
liked / disliked / seen as [{item_id, title}]. `account` is the signed-in user of `marquee serve --auth` (the
Gradio request's username, None without auth): the owner of the stored profile (RecommenderAgent.chat).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

FEEDBACK_STATUS = {"like": "liked", "dislike": "disliked", "seen": "seen"}
EDITABLE_FIELDS = ("genres", "exclude_genres", "year_min", "year_max", "count")
WARM_UP_SESSION = "__warmup__"


class UserInputError(ValueError):
    """Input the person can fix (unknown genre, empty year range, bad session id …); shown to them as is."""


def catalog_genres(agent: Any) -> list[str]:
    return list(agent.catalog.genres())


def max_count(agent: Any) -> int:
    return int(agent.cfg.max_count)


def default_count(agent: Any) -> int:
    return int(agent.cfg.default_count)


def stream_turn(agent: Any, session_id: str, message: str, account: str | None = None) -> Iterator[tuple[str, Any]]:
    """("text", delta) events while the reply streams, then one ("items", [item dicts])."""
    with _user_errors():
        for event in agent.stream(message, session_id=session_id, account=account):  # agent.replies.StreamEvent
            if event.kind == "text":
                if event.text:
                    yield "text", event.text
            else:
                yield "items", [_item_view(agent, it) for it in event.items]


def chat_turn(agent: Any, session_id: str, message: str, account: str | None = None) -> dict[str, Any]:
    with _user_errors():
        reply = agent.chat(message, session_id=session_id, account=account)
    return {"text": reply.text, "items": [_item_view(agent, it) for it in reply.items],
            "understood": reply.understood, "preferences": reply.state}


def _item_view(agent: Any, item: Any) -> dict[str, Any]:
    view = item.model_dump()
    catalog_item = agent.catalog.get(view["item_id"])
    view["description_generated"] = bool(catalog_item is not None and catalog_item.description_generated)
    return view


def feedback(agent: Any, session_id: str, item_id: str, action: str, account: str | None = None) -> dict[str, Any]:
    """action "like" | "dislike" | "seen"; returns the session's preferences afterwards."""
    if action not in FEEDBACK_STATUS:
        raise UserInputError(f"unknown feedback action {action!r}; use one of: {', '.join(FEEDBACK_STATUS)}")
    with _user_errors():
        if action == "seen":
            return agent.feedback(session_id, item_id, liked=None, seen=True, account=account)
        return agent.feedback(session_id, item_id, liked=action == "like", account=account)


def preferences(agent: Any, session_id: str) -> dict[str, Any]:
    """What the agent understood so far, as the preference panel shows it."""
    with _user_errors():
        return agent.get_state(session_id)


def apply_preferences(agent: Any, session_id: str, edits: dict[str, Any]) -> dict[str, Any]:
    """Overwrite the fields present in `edits` (absent ones stay; None clears years / count)."""
    if not isinstance(edits, dict):
        raise UserInputError(f"preferences must be an object with any of: {', '.join(EDITABLE_FIELDS)}")
    unknown = sorted(set(edits) - set(EDITABLE_FIELDS))
    if unknown:
        raise UserInputError(f"unknown preference field(s): {', '.join(unknown)}; "
                             f"editable: {', '.join(EDITABLE_FIELDS)}")
    clean = {key: _whole_number(value, key) if key in ("year_min", "year_max", "count") else value
             for key, value in edits.items()}
    with _user_errors():
        return agent.set_preferences(session_id, **clean)


def _whole_number(value: Any, name: str) -> int | None:
    """Numbers from the page arrive as floats (gr.Number) or strings (JSON clients)."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserInputError(f"{name} must be a whole number, got {value!r}") from None
    if number != int(number):
        raise UserInputError(f"{name} must be a whole number, got {value!r}")
    return int(number)


def reset(agent: Any, session_id: str) -> dict[str, Any]:
    with _user_errors():
        return agent.reset(session_id)


def warm_up(agent: Any) -> None:
    """Run one throw-away turn so lazy loads (model weights, index, tokenizer) happen before "ready".
    One pick is enough to load every part (retriever, reranker, explainer) and keeps start-up short."""
    agent.set_preferences(WARM_UP_SESSION, count=1)
    for _ in agent.stream("sci-fi and action films", session_id=WARM_UP_SESSION):
        pass
    agent.reset(WARM_UP_SESSION)


@contextmanager
def _user_errors():
    """The agent raises ValueError for input a person can fix (its messages list the valid choices)."""
    try:
        yield
    except UserInputError:
        raise
    except ValueError as err:
        raise UserInputError(str(err)) from err
