"""HTML fragments of the chat page, built from catalog text and agent output.

Every string that comes from the catalog, the LLM or the user passes through `html.escape`: titles
and generated descriptions are untrusted text, and the page must not run what they contain (XSS). None
of these fragments goes through a Markdown or LaTeX renderer (gr.HTML, and a Chatbot with
render_markdown off), so `![x](http://host/pixel.png)` stays those characters and loads nothing.
"""
from __future__ import annotations

from html import escape
from typing import Any

from agent.locale import LANGUAGES, Locale

MIN_RATINGS_SHOWN = 10  # the card quotes a mean rating only over this many ratings (as the explanations do)

FEEDBACK_LABELS = {"liked": "You liked this", "disliked": "You disliked this — it won't be suggested again",
                   "seen": "Marked as seen — it won't be suggested again"}


def card_html(item: dict[str, Any], status: str | None = None) -> str:
    """One recommendation card. `item` is a plain dict (see `agent.web.views.item_view`)."""
    genres = [str(g) for g in item.get("genres") or []]
    chips = "".join(f'<span class="mq-chip">{escape(g)}</span>' for g in genres)
    year = item.get("year")
    year_html = f'<span class="mq-year">{escape(str(year))}</span>' if year else ""
    description = str(item.get("description") or "").strip()
    desc_html = ""
    if description:
        badge = ' <span class="mq-badge" title="written by the language model from catalog facts">AI-written</span>' \
            if item.get("description_generated") else ""
        desc_html = f'<p class="mq-desc">{escape(description)}{badge}</p>'
    loc = Locale(item.get("language") if item.get("language") in LANGUAGES else "en")
    explanation = str(item.get("explanation") or "").strip()
    why_html = (f'<p class="mq-why"><strong>{escape(loc.text("card", "why"))}</strong> {escape(explanation)}</p>'
                if explanation else "")
    title_zh = str(item.get("title_zh") or "") if loc.language == "zh" else ""
    zh_html = f' <span class="mq-title-zh">《{escape(title_zh)}》</span>' if title_zh else ""
    facts = evidence_line(item.get("evidence"), loc)
    evidence_html = (f'<p class="mq-evidence" title="{escape(loc.text("card", "evidence"))}">{escape(facts)}</p>'
                     if facts else "")
    score = item.get("score")
    score_html = ""
    if isinstance(score, (int, float)):
        score_html = f'<span class="mq-score" title="ranking score">score {float(score):.2f}</span>'
    status_html = ""
    if status in FEEDBACK_LABELS:
        status_html = f'<p class="mq-status mq-status-{status}">{escape(FEEDBACK_LABELS[status])}</p>'
    classes = "mq-card-body" + (f" mq-{status}" if status else "")
    return (
        f'<article class="{classes}" lang="{loc.language}" data-item-id="{escape(str(item.get("item_id", "")))}" '
        f'data-year="{escape(str(year or ""))}" data-genres="{escape("|".join(genres))}" '
        f'data-status="{escape(status or "")}">'
        f'<header class="mq-card-head"><h3 class="mq-title">{escape(str(item.get("title", "")))}{zh_html}</h3>'
        f"{year_html}</header>"
        f'<div class="mq-chips">{chips}</div>{desc_html}{why_html}{evidence_html}'
        f'<footer class="mq-card-foot">{score_html}</footer>{status_html}</article>'
    )


def evidence_line(evidence: Any, loc: Locale) -> str:
    """The card's one-line summary of a pick's evidence (plain text: the caller escapes it): its strongest
    connection, its rating, its popularity rank. "" when there is nothing to show."""
    if not isinstance(evidence, dict):
        return ""
    parts = []
    connections = evidence.get("connections") or []
    if connections and isinstance(connections[0], dict):
        c = connections[0]
        key = "connection_loved" if c.get("measure") == "loved" else "connection_watched"
        parts.append(loc.text("card", key, percent=c.get("percent"), fans=f"{int(c.get('fans') or 0):,}",
                              source=c.get("title", "")))
    stats = evidence.get("catalog") or {}
    if stats.get("rating_mean") is not None and int(stats.get("rating_count") or 0) >= MIN_RATINGS_SHOWN:
        parts.append(loc.text("card", "rating", mean=f"{float(stats['rating_mean']):.1f}",
                              scale=stats.get("rating_scale") or "", count=f"{int(stats['rating_count']):,}"))
    if stats.get("popularity_rank"):
        parts.append(loc.text("card", "popular", rank=f"{int(stats['popularity_rank']):,}",
                              size=f"{int(stats.get('catalog_size') or 0):,}"))
    return loc.text("card", "separator").join(parts)


def _title_list(entries: list[dict]) -> str:
    return ", ".join(escape(str(e.get("title", ""))) for e in entries) if entries else "—"


def understood_html(prefs: dict[str, Any], turns: int = 0) -> str:
    """A read-only summary of what the agent understood (the editable fields sit beside it).
    `prefs` is `RecommenderAgent.describe()`; `data-turns` counts this tab's finished turns (tests and
    benchmarks wait on it)."""
    rows = [("Looking for", escape(prefs.get("query") or "") or "—"),
            ("Mood", escape(", ".join(prefs.get("moods") or [])) or "—"),
            ("Liked", _title_list(prefs.get("liked") or [])),
            ("Disliked", _title_list(prefs.get("disliked") or [])),
            ("Seen", _title_list(prefs.get("seen") or []))]
    body = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows)
    return f'<dl class="mq-understood" data-turns="{int(turns)}">{body}</dl>'


def text_html(text: str) -> str:
    """Plain text for the chat (which renders HTML, not Markdown): escaped, line breaks kept."""
    return escape(str(text), quote=False).replace("\n", "<br>")


def status_html(text: str) -> str:
    """The preference panel's one-line status."""
    return f'<p class="mq-prefs-status">{escape(str(text))}</p>'


def empty_cards_html() -> str:
    return ('<div class="mq-empty">Recommendations appear here. Try one of the examples, '
            "or say what you feel like watching.</div>")
