"""The Gradio Blocks chat page: streaming chat, recommendation cards with feedback, editable preferences.

One `RecommenderAgent` serves every browser tab; each tab keeps its own session id in `gr.State`
(created server-side on the tab's first action, random, unguessable), so tabs never share state. Every
call into the agent goes through one queue concurrency group whose limit is `[server] concurrency`.
Text from the catalog, the LLM and the user is shown as text, never interpreted: the chat renders no
Markdown or LaTeX and every fragment is HTML-escaped (agent.web.render).
"""
from __future__ import annotations

import importlib.resources
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from agent.web import api, views
from agent.web.render import card_html, empty_cards_html, status_html, text_html, understood_html

log = logging.getLogger(__name__)

EXAMPLES = ("sci-fi and action films", "something older, no war films",
            "我喜欢看电影，尤其是科幻片和动作片", "I loved Alien, what else?")
CSS_PATH = Path(str(importlib.resources.files(__package__) / "style.css"))  # package data
AGENT_QUEUE = "agent"  # concurrency group of every event that calls the agent
# Symbols that common system fonts have (no emoji font needed).
ACTIONS = (("like", "♥ Like"), ("dislike", "✕ Dislike"), ("seen", "✓ Seen"))
SORRY = "⚠️ Sorry, something went wrong on my side. Please try again."


def theme() -> gr.themes.Base:
    """System fonts only: Gradio's stock themes would fetch web fonts (Google Fonts) from the page."""
    system = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Noto Sans", "Helvetica Neue", "Arial",
              "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", "sans-serif"]
    mono = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
    return gr.themes.Soft(primary_hue="indigo", secondary_hue="slate", neutral_hue="slate", font=system,
                          font_mono=mono, radius_size="md")


def css() -> str:
    return CSS_PATH.read_text(encoding="utf-8")


def head() -> str:
    """Rules outside the app container, which `css()` cannot reach (Gradio scopes it inside the container)."""
    return ("<style>@media (max-width: 640px) { .gradio-container .main.app { padding-left: 10px !important;"
            " padding-right: 10px !important; } }</style>")


def new_session_id() -> str:
    return f"web-{uuid.uuid4().hex}"


@dataclass
class CardSlot:
    column: gr.Column
    body: gr.HTML
    buttons: dict[str, gr.Button]


@dataclass
class Page:
    """Every component the handlers read or update."""

    session: gr.State
    shown: gr.State  # the items on the cards: [{"item": {...}, "status": None | "liked" | ...}]
    turns: gr.State  # finished turns in this tab (rendered as data-turns for tests and benchmarks)
    chatbot: gr.Chatbot
    message: gr.Textbox
    send: gr.Button
    examples: list[gr.Button]
    empty: gr.HTML
    slots: list[CardSlot]
    understood: gr.HTML
    genres_in: gr.Dropdown
    genres_out: gr.Dropdown
    year_min: gr.Number
    year_max: gr.Number
    count: gr.Slider
    apply: gr.Button
    prefs_status: gr.Markdown
    reset: gr.Button
    default_count: int = 5
    pref_fields: list = field(default_factory=list)
    card_outputs: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pref_fields = [self.genres_in, self.genres_out, self.year_min, self.year_max, self.count]
        self.card_outputs = [self.empty] + [c for slot in self.slots for c in (slot.column, slot.body)]

    def prefs_updates(self, prefs: dict[str, Any], n_turns: int) -> dict:
        """The panel showing `prefs` (RecommenderAgent.describe())."""
        return {self.understood: understood_html(prefs, n_turns), self.genres_in: prefs.get("genres", []),
                self.genres_out: prefs.get("exclude_genres", []), self.year_min: prefs.get("year_min"),
                self.year_max: prefs.get("year_max"), self.count: prefs.get("count") or self.default_count}

    def card_updates(self, entries: list[dict]) -> dict:
        updates: dict = {self.empty: gr.update(visible=not entries)}
        for i, slot in enumerate(self.slots):
            visible = i < len(entries)
            updates[slot.column] = gr.update(visible=visible)
            if visible:
                updates[slot.body] = card_html(entries[i]["item"], entries[i]["status"])
        return updates


def build_app(agent: Any) -> gr.Blocks:
    """The page for one shared agent (launch it with `theme()` and `css()`; see agent.web.server)."""
    with gr.Blocks(title="Marquee — movie recommendations", analytics_enabled=False) as demo:
        page = _layout(views.catalog_genres(agent), views.max_count(agent), views.default_count(agent))
        _wire_chat(page, agent)
        _wire_feedback(page, agent)
        _wire_preferences(page, agent)
        api.register(agent)  # stable, documented endpoints for gradio_client (agent/web/api.py)
    return demo


def _layout(genres: list[str], max_cards: int, default_count: int) -> Page:
    """Wide screens: chat and cards on the left, the preference panel on the right; phones: stacked."""
    session, shown, turns = gr.State(None), gr.State([]), gr.State(0)
    gr.HTML('<h1><span class="mq-logo">▶</span> Marquee</h1>'
            "<p>Tell me what you feel like watching; like, dislike or refine and I'll adjust.</p>",
            elem_id="mq-header")
    with gr.Row(elem_id="mq-main", equal_height=False):
        with gr.Column(scale=3, min_width=0, elem_id="mq-chat-col"):
            # render_markdown off, no LaTeX: a title such as ![x](http://host/pixel.png) or $$\href{…}$$ is
            # shown as written (render.text_html escapes it), never turned into an image, link or formula
            chatbot = gr.Chatbot(elem_id="mq-chatbot", height=420, show_label=False, buttons=["copy"],
                                 feedback_options=None, autoscroll=True, render_markdown=False,
                                 latex_delimiters=[],
                                 placeholder="Ask for films by genre, era, mood or a title you loved.")
            with gr.Row(elem_id="mq-input-row"):
                message = gr.Textbox(show_label=False, placeholder="e.g. sci-fi and action films", elem_id="mq-input",
                                     scale=5, min_width=0, lines=1, max_lines=4, autofocus=True)
                send = gr.Button("Send", variant="primary", elem_id="mq-send", scale=0, min_width=0)
            with gr.Row(elem_id="mq-examples"):
                examples = [gr.Button(text, size="sm", variant="secondary", elem_classes="mq-example", min_width=0,
                                      scale=0) for text in EXAMPLES]
            gr.Markdown("### Recommendations", elem_id="mq-cards-title")
            empty = gr.HTML(empty_cards_html(), elem_id="mq-cards-empty")
            slots = []
            with gr.Row(elem_id="mq-cards"):
                for _ in range(max_cards):
                    with gr.Column(visible=False, elem_classes="mq-card", min_width=0) as column:
                        body = gr.HTML("")
                        with gr.Row(elem_classes="mq-actions"):
                            buttons = {key: gr.Button(label, size="sm", variant="secondary", min_width=0,
                                                      elem_classes=f"mq-{key}") for key, label in ACTIONS}
                    slots.append(CardSlot(column, body, buttons))
        with gr.Column(scale=2, min_width=0, elem_id="mq-side"):
            with gr.Group(elem_id="mq-prefs"):
                gr.Markdown("### What I understood", padding=True)
                understood = gr.HTML(understood_html({}), elem_id="mq-understood", padding=True)
                genres_in = gr.Dropdown(genres, value=[], multiselect=True, label="Genres wanted",
                                        elem_id="mq-genres-in")
                genres_out = gr.Dropdown(genres, value=[], multiselect=True, label="Genres to avoid",
                                         elem_id="mq-genres-out")
                with gr.Row():
                    # the placeholder keeps an empty box looking empty (without one Gradio shows 0)
                    year_min = gr.Number(label="From year", placeholder="any", precision=0, elem_id="mq-year-min",
                                         min_width=0)
                    year_max = gr.Number(label="To year", placeholder="any", precision=0, elem_id="mq-year-max",
                                         min_width=0)
                count = gr.Slider(1, max_cards, step=1, value=default_count, label="How many", elem_id="mq-count")
                apply = gr.Button("Apply preferences", variant="primary", elem_id="mq-apply")
            prefs_status = gr.HTML("", elem_id="mq-prefs-status")
            reset = gr.Button("Start over", variant="secondary", elem_id="mq-reset")
    return Page(session, shown, turns, chatbot, message, send, examples, empty, slots, understood, genres_in,
                genres_out, year_min, year_max, count, apply, prefs_status, reset, default_count)


def _wire_chat(page: Page, agent: Any) -> None:
    max_cards = len(page.slots)

    def respond(text: str, history: list, sid: str | None, n_turns: int, request: gr.Request):
        text = (text or "").strip()
        if not text:
            yield {page.message: ""}
            return
        sid = sid or new_session_id()
        n_turns += 1
        history = list(history or []) + [{"role": "user", "content": text_html(text)},
                                         {"role": "assistant", "content": ""}]
        yield {page.message: "", page.chatbot: history, page.session: sid}
        reply = ""
        arrived: list[dict] = []  # cards of this reply so far: each appears as soon as its explanation is final
        final: dict = {}  # the reply's cards again with the panel in the last update, so both show at once
        try:
            for kind, payload in views.stream_turn(agent, sid, text, api.account_of(request)):
                if kind == "text":
                    reply += payload
                    # escaped: titles and generated text in the reply are text, not markup
                    history[-1] = {"role": "assistant", "content": text_html(reply)}
                    yield {page.chatbot: history}
                elif kind == "item" and len(arrived) < max_cards:
                    arrived.append({"item": payload, "status": None})
                    yield {page.shown: list(arrived), **page.card_updates(arrived)}
                elif kind == "items":
                    entries = [{"item": item, "status": None} for item in payload[:max_cards]]
                    final = {page.shown: entries, **page.card_updates(entries)}
                    yield final
        except views.UserInputError as err:  # input the person can fix: say what to change
            history[-1] = {"role": "assistant", "content": text_html(f"⚠️ {err}")}
            yield {page.chatbot: history}
        except Exception:  # noqa: BLE001 — the page never shows a traceback
            log.exception("turn failed in session %s", sid)
            history[-1] = {"role": "assistant", "content": SORRY}
            yield {page.chatbot: history}
        yield {**final, page.turns: n_turns, page.prefs_status: "",
               **page.prefs_updates(views.preferences(agent, sid), n_turns)}

    outputs = [page.message, page.chatbot, page.session, page.shown, page.turns, page.understood,
               page.prefs_status, *page.pref_fields, *page.card_outputs]
    chat = dict(fn=respond, inputs=[page.message, page.chatbot, page.session, page.turns],
                outputs=outputs, concurrency_id=AGENT_QUEUE, api_visibility="private", show_progress="minimal")
    page.message.submit(**chat)
    page.send.click(**chat)
    for button, text in zip(page.examples, EXAMPLES):
        button.click(lambda t=text: t, outputs=page.message, queue=False, api_visibility="private").then(**chat)

    def start_over(sid: str | None, n_turns: int):
        if sid:
            views.reset(agent, sid)
        return {page.chatbot: [], page.shown: [], page.prefs_status: "", **page.prefs_updates({}, n_turns),
                **page.card_updates([])}

    reset = dict(fn=start_over, inputs=[page.session, page.turns],
                 outputs=[page.chatbot, page.shown, page.prefs_status, page.understood, *page.pref_fields,
                          *page.card_outputs], concurrency_id=AGENT_QUEUE, api_visibility="private")
    page.reset.click(**reset)
    page.chatbot.clear(**reset)  # the chat's own "clear" icon starts over too


def _wire_feedback(page: Page, agent: Any) -> None:
    def handler(index: int, action: str):
        def handle(sid: str | None, entries: list, n_turns: int, request: gr.Request):
            if not sid or index >= len(entries):
                return {}
            entries = [dict(e) for e in entries]
            try:
                views.feedback(agent, sid, entries[index]["item"]["item_id"], action, api.account_of(request))
            except views.UserInputError as err:
                gr.Warning(text_html(str(err)))  # Gradio renders a toast's message as HTML
                return {}
            entry = entries[index]
            entry["status"] = views.FEEDBACK_STATUS[action]
            return {page.shown: entries, page.slots[index].body: card_html(entry["item"], entry["status"]),
                    **page.prefs_updates(views.preferences(agent, sid), n_turns)}
        return handle

    for index, slot in enumerate(page.slots):
        for action, button in slot.buttons.items():
            button.click(handler(index, action), inputs=[page.session, page.shown, page.turns],
                         outputs=[page.shown, slot.body, page.understood, *page.pref_fields],
                         concurrency_id=AGENT_QUEUE, api_visibility="private", show_progress="hidden")


def _wire_preferences(page: Page, agent: Any) -> None:
    def save(sid: str | None, n_turns: int, genres, exclude_genres, year_min, year_max, count):
        sid = sid or new_session_id()
        # An empty gr.Number arrives as 0 (Gradio's frontend default); no film is from year 0, so 0 = no limit.
        edits = {"genres": genres or [], "exclude_genres": exclude_genres or [], "year_min": _whole(year_min) or None,
                 "year_max": _whole(year_max) or None, "count": _whole(count)}
        try:
            prefs = views.apply_preferences(agent, sid, edits)
        except views.UserInputError as err:
            return {page.session: sid, page.prefs_status: status_html(f"⚠️ {err}")}
        return {page.session: sid, page.prefs_status: status_html("Saved — your next message uses these preferences."),
                **page.prefs_updates(prefs, n_turns)}

    page.apply.click(save, inputs=[page.session, page.turns, *page.pref_fields],
                     outputs=[page.session, page.understood, page.prefs_status, *page.pref_fields],
                     concurrency_id=AGENT_QUEUE, api_visibility="private")


def _whole(value: Any) -> Any:
    """The panel's numbers arrive as floats (gr.Slider, gr.Number); the agent takes whole numbers strictly."""
    return int(value) if isinstance(value, float) and value.is_integer() else value
