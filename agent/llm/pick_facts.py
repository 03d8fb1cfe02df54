"""What the explainer and the describer tell the model about a pick: its catalog facts and its evidence as numbered
fact lines, and the request as quoted data (never as instructions). Serving and fine-tuning build their prompts
here, so the explainer is trained on exactly the text it is served (docs/ARCHITECTURE.md §5).

    context = PickContext(item, evidence, request="sci-fi and action films", wishes="genres: Action, Sci-Fi")
    fields = explain_fields(context)        # the {fields} of prompts/explain.txt
    fields = describe_fields(item, evidence) # the {fields} of prompts/describe.txt
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.llm.prompting import NONE_TEXT, clean
from retrieval.catalog.schema import Item
from retrieval.evidence import CatalogStats, Connection, Evidence

MIN_RATINGS_QUOTED = 10  # a mean over fewer ratings is not stated (as the template explanations do)
RELATION_LEADS = {
    "anchor": "You asked for more like {title}",
    "liked": "You liked {title}",
    "history": "You rated {title} highly",
}


@dataclass(frozen=True)
class PickContext:
    """One pick as a sentence about it may see it: the item, its evidence, and the request around it."""

    item: Item
    evidence: Evidence
    request: str = ""  # the user's message as typed (untrusted: quoted, never followed)
    wishes: str = ""  # what the agent understood of the conversation ("genres: Action, Sci-Fi; years: …")
    liked: tuple[str, ...] = ()  # labels of the titles the user liked or named as anchors
    asked_genres: tuple[str, ...] = ()  # the genres asked for (catalog names)


def quoted(text: str, limit: int = 200) -> str:
    """Untrusted text as one quoted line of data: cleaned (no control characters or chat-template tokens),
    bounded, its double quotes turned into single ones so the quote cannot be closed early."""
    text = clean(text, limit)
    return f'"{text.replace(chr(34), chr(39))}"' if text else NONE_TEXT


def _number(value: int) -> str:
    return f"{value:,}"


def _genres(genres: Sequence[str]) -> str:
    names = list(genres)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def connection_line(c: Connection) -> str:
    verb = "loved" if c.measure == "loved" else "watched"
    fans = "fans" if c.measure == "loved" else "viewers"
    title = clean(c.title, 120)
    stat = f"{_number(c.also)} of its {_number(c.fans)} {fans} also {verb} this film ({c.percent}%)"
    lead = RELATION_LEADS.get(c.relation)
    if lead:
        return f"{lead.format(title=title)}; {stat}."
    return f"Of the {_number(c.fans)} viewers who {verb} {title}, {_number(c.also)} also {verb} this film ({c.percent}%)."


def request_lines(evidence: Evidence, item: Item) -> list[str]:
    s = evidence.satisfies
    lines = []
    if s.all_genres and len(s.genres) >= 2:
        lines.append(f"It has every genre you asked for: {_genres(s.genres)}.")
    elif s.genres:
        lines.append(f"It is {_genres(s.genres)}, as you asked.")
    if s.years and item.year:
        lines.append(f"It is from {item.year}, within the years you asked for.")
    if s.mood_genres and s.moods:
        lines.append(f"Its {_genres(s.mood_genres)} side fits the {', '.join(clean(m, 40) for m in s.moods)} mood "
                     "you asked for.")
    if s.audience_genres:
        lines.append(f"As {_genres(s.audience_genres)}, it suits the family audience you asked for.")
    if s.avoided_genres:
        lines.append(f"It has no {_genres(s.avoided_genres)}, which you wanted to avoid.")
    return lines


def catalog_lines(k: CatalogStats | None) -> list[str]:
    if k is None:
        return []
    lines = []
    if k.rating_mean is not None and k.rating_count >= MIN_RATINGS_QUOTED:
        scale = f" out of {k.rating_scale}" if k.rating_scale else ""
        line = f"Average rating {k.rating_mean:.1f}{scale} from {_number(k.rating_count)} ratings"
        lines.append(line + (f", in the top {k.rating_top_percent}% of the catalog by rating." if k.top_rated else "."))
    if k.viewers:
        people = "viewer" if k.viewers == 1 else "viewers"
        line = f"Watched by {_number(k.viewers)} {people}, number {_number(k.popularity_rank)} of " \
               f"{_number(k.catalog_size)} in the catalog by audience"
        lines.append(line + (f" (top {k.top_percent}%)." if k.most_watched else "."))
    return lines


def fact_lines(evidence: Evidence, item: Item) -> list[str]:
    """The evidence, strongest and most personal first: connections, shared genres, the request, then the
    pick's standing in the catalog."""
    lines = [connection_line(c) for c in evidence.connections]
    lines += [f"Like {clean(s.title, 120)}, it is {_genres(s.genres)}." for s in evidence.shared_genres]
    lines += request_lines(evidence, item)
    lines += catalog_lines(evidence.catalog)
    return lines


def item_fields(item: Item) -> dict[str, str]:
    """The pick's own catalog facts; a description only when the catalog itself holds it (a generated one
    restates evidence and adds nothing a sentence may cite)."""
    own = item.description and not item.description_generated
    return {"label": quoted(item.label, 160), "title": clean(item.title, 120),
            "genres": ", ".join(item.genres) or NONE_TEXT,
            "description": f"\nCatalog description: {quoted(item.description, 400)}" if own else ""}


def explain_fields(context: PickContext) -> dict[str, str]:
    """The {fields} of prompts/explain.txt."""
    facts = fact_lines(context.evidence, context.item)
    liked = "; ".join(quoted(label, 120) for label in context.liked[-5:])
    return {**item_fields(context.item), "request": quoted(context.request),
            "wishes": clean(context.wishes, 300) or NONE_TEXT, "liked": f"\nViewer liked: {liked}" if liked else "",
            "facts": "\n".join(f"{n}. {line}" for n, line in enumerate(facts, 1)) or NONE_TEXT}


def describe_fields(item: Item, evidence: Evidence) -> dict[str, str]:
    """The {fields} of prompts/describe.txt: the item's facts and what its audience and ratings say."""
    facts = fact_lines(evidence, item)
    return {**item_fields(item), "year": str(item.year) if item.year else NONE_TEXT,
            "facts": "\n".join(f"{n}. {line}" for n, line in enumerate(facts, 1)) or NONE_TEXT}
