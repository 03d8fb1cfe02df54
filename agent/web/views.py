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

from agent.validation import FeedbackRequest, PreferencesUpdate

FEEDBACK_STATUS = {"like": "liked", "dislike": "disliked", "seen": "seen"}
EDITABLE_FIELDS = ("genres", "exclude_genres", "year_min", "year_max", "count")
WARM_UP_SESSION = "__warmup__"


class UserInputError(ValueError):
    """Input the person can fix (unknown genre, empty year range, bad session id …); shown to them as is.
    Every `ValueError` of the agent (`agent.validation.InputError` included) arrives here as one."""


def catalog_genres(agent: Any) -> list[str]:
    return list(agent.catalog.genres())


def max_count(agent: Any) -> int:
    return int(agent.cfg.max_count)


def default_count(agent: Any) -> int:
    return int(agent.cfg.default_count)


def stream_turn(agent: Any, session_id: str, message: str, account: str | None = None) -> Iterator[tuple[str, Any]]:
    """("text", delta) events while the reply streams, then ("language", "en" | "zh") and ("items", [item dicts])."""
    with _user_errors():
        for event in agent.stream(message, session_id=session_id, account=account):  # agent.replies.StreamEvent
            if event.kind == "text":
                if event.text:
                    yield "text", event.text
            else:
                language = event.reply.language if event.reply is not None else "en"
                yield "language", language
                yield "items", [_item_view(agent, it, language) for it in event.items]


def chat_turn(agent: Any, session_id: str, message: str, account: str | None = None) -> dict[str, Any]:
    with _user_errors():
        reply = agent.chat(message, session_id=session_id, account=account)
    return {"text": reply.text, "items": [_item_view(agent, it, reply.language) for it in reply.items],
            "understood": reply.understood, "preferences": reply.state, "language": reply.language}


def _item_view(agent: Any, item: Any, language: str = "en") -> dict[str, Any]:
    """The item as JSON: its fields (evidence included, as a dict), whether an LLM wrote its description, and
    the language of the reply it belongs to (the card's labels follow it)."""
    view = item.model_dump()
    catalog_item = agent.catalog.get(view["item_id"])
    view["description_generated"] = bool(catalog_item is not None and catalog_item.description_generated)
    view["language"] = language
    return view


def feedback(agent: Any, session_id: str, item_id: str, action: str, account: str | None = None) -> dict[str, Any]:
    """action "like" | "dislike" | "seen"; returns the session's preferences afterwards."""
    with _user_errors():
        return agent.apply_feedback(FeedbackRequest.for_action(session_id, item_id, action, agent.limits.context(),
                                                               account=account))


def preferences(agent: Any, session_id: str) -> dict[str, Any]:
    """What the agent understood so far, as the preference panel shows it."""
    with _user_errors():
        return agent.get_state(session_id)


def apply_preferences(agent: Any, session_id: str, edits: dict[str, Any]) -> dict[str, Any]:
    """Overwrite the fields present in `edits` (absent ones stay; None clears years / count). Values are
    checked strictly (`agent.validation.PreferencesUpdate`): whole numbers, known genre names."""
    if not isinstance(edits, dict):
        raise UserInputError(f"preferences must be an object with any of: {', '.join(EDITABLE_FIELDS)}")
    unknown = sorted(str(key) for key in set(edits) - set(EDITABLE_FIELDS))
    if unknown:
        raise UserInputError(f"unknown preference field(s): {', '.join(unknown)}; "
                             f"editable: {', '.join(EDITABLE_FIELDS)}")
    with _user_errors():
        return agent.apply_preferences(agent.validate(PreferencesUpdate, {"session_id": session_id, **edits}))


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
    from agent.session_locks import SessionBusyError

    try:
        yield
    except UserInputError:
        raise
    except (ValueError, SessionBusyError) as err:  # busy: the person can retry in a moment
        raise UserInputError(str(err)) from err
