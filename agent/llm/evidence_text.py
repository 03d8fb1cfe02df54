"""Template explanations from a pick's evidence (retrieval.evidence), in English or Chinese.

Wording: prompts/explain_template_en.toml and prompts/explain_template_zh.toml, several sentence frames per kind of
evidence. An explanation is one or two sentences: the pick's strongest piece of evidence first (a connection to a
title the user liked, else the genres it shares with one, else its rating or popularity, else the retrieval signal
that found it), then one thing it meets of the request (both genres of a compound, the mood, the family audience,
the genres, the years) or, failing that, a second statistic (at the least its audience size). It never only restates
the genres and year the card shows. `ExplanationWriter.write` explains a whole reply at once: every kind of evidence
hands out its frames in turn, so two picks of a reply share a frame only when a kind runs out of them, and among
equally strong pieces the kind used least so far in the reply leads.
"""
from __future__ import annotations

import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import prompts
from retrieval.catalog.schema import Item
from retrieval.evidence import CatalogStats, Evidence, Satisfied

LANGUAGES = ("en", "zh")
# kinds that can lead an explanation: each says something the card does not show (not just genres and year)
LEAD_KINDS = ("connection_loved", "connection_watched", "shared", "rating", "popular", "viewers", "semantic",
              "collaborative", "plain")
MIN_LIFT = 1.2  # a frame that says "N times as likely" is used only when N is at least this
NOTABLE_MEAN_SHARE = 0.75  # a rating this far up the scale (3.75 of 5 on a 1–5 scale) can lead an explanation
NOTABLE_TOP_PERCENT = 10  # a title in the top 10% by viewers can lead with its popularity
MIN_RATINGS_QUOTED = 10  # below this many ratings a mean is not quoted at all (the viewer count is)


@lru_cache(maxsize=None)
def frames(language: str) -> dict[str, list[str]]:
    """kind -> its sentence frames in `language` (prompts/explain_template_<language>.toml)."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, got {language!r}")
    return {kind: list(texts) for kind, texts in prompts.load_table(f"explain_template_{language}")["frames"].items()}


@lru_cache(maxsize=None)
def joiners(language: str) -> dict[str, str]:
    return dict(prompts.load_table(f"explain_template_{language}")["join"])


def frame_fields(frame: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(frame) if name}


@dataclass(frozen=True)
class Piece:
    kind: str  # a [frames] key
    fields: Mapping[str, str]


def _number(value: int) -> str:
    return f"{value:,}"  # thousands separated, so a count is never read as a year ("1,995 viewers")


class ExplanationWriter:
    """Writes the template explanations of one reply. `genre_name` and `title_name` say how genres and titles
    are shown in `language` (agent/locale.py passes the Chinese names); by default the catalog's own."""

    def __init__(self, language: str = "en", genre_name: Callable[[str], str] = str,
                 title_name: Callable[[str, str], str] = lambda item_id, label: label):
        self.language = language
        self.frames = frames(language)
        self.join = joiners(language)
        self.genre_name = genre_name
        self.title_name = title_name

    # ------------------------------------------------------------------ the reply
    def write(self, picks: Sequence[tuple[Item, Evidence]], offset: int = 0) -> list[str]:
        """One explanation per pick, in order."""
        return [text for text, _ in self.explain(picks, offset)]

    def variants(self, picks: Sequence[tuple[Item, Evidence]], count: int = 3) -> list[list[str]]:
        """Per pick, up to `count - 1` other wordings of its explanation (the frames handed out from a later turn),
        for where `write`'s text would repeat a phrase an explanation shown before it used."""
        rounds = [self.write(picks, offset) for offset in range(1, count)]
        return [list(dict.fromkeys(r[n] for r in rounds if r[n] != first)) for n, first in enumerate(self.write(picks))]

    def explain(self, picks: Sequence[tuple[Item, Evidence]], offset: int = 0) -> list[tuple[str, tuple[str, ...]]]:
        """(explanation, the kinds of evidence it states, leading kind first) per pick; `offset`: how many frames of
        each kind to pass over first (`variants`)."""
        used: Counter[str] = Counter({kind: offset for kind in self.frames})  # frames handed out per kind
        led: Counter[str] = Counter()  # kinds that led an explanation so far
        out = []
        for _item, evidence in picks:
            lead = self._lead(evidence, led)
            led[lead.kind] += 1
            pieces = [lead] + [p for p in [self._second(evidence, lead, used)] if p]
            sentences = [self._render(piece, used) for piece in pieces]
            out.append((("" if self.language == "zh" else " ").join(sentences), tuple(p.kind for p in pieces)))
        return out

    # ------------------------------------------------------------------ choosing the pieces
    def _lead(self, ev: Evidence, led: Counter) -> Piece:
        if ev.connections:
            return self._connection(ev)
        if ev.shared_genres:
            shared = ev.shared_genres[0]
            return Piece("shared", {"source": self.title_name(shared.item_id, shared.title),
                                    "genres": self._genres(shared.genres)})
        notable = [p for p in (self._rating(ev.catalog, notable=True), self._popular(ev.catalog, notable=True)) if p]
        if notable:  # of equally strong statistics, the kind that led fewest explanations so far leads this one
            return min(notable, key=lambda p: led[p.kind])
        for piece in (self._rating(ev.catalog, notable=False), self._viewers(ev.catalog), self._signal(ev)):
            if piece:
                return piece
        return Piece("plain", {})

    def _second(self, ev: Evidence, lead: Piece, used: Counter) -> Piece | None:
        """One thing the pick meets of the request (the least used kind first), else a second statistic."""
        s = ev.satisfies
        wishes = []
        if s.all_genres and len(s.genres) >= 2:
            wishes.append(Piece("compound", {"genres": self._genres(s.genres)}))
        elif len(s.genres) >= 1 and lead.kind != "shared":
            # one asked-for genre that every pick has says nothing: only a choice among several is worth a sentence
            if s.asked_genres > 1:
                wishes.append(Piece("genres", {"genres": self._genres(s.genres)}))
        if s.mood_genres and s.moods:
            wishes.append(Piece("mood", {"genres": self._genres(s.mood_genres),
                                         "moods": self.join["list"].join(s.moods)}))
        if s.audience_genres:
            wishes.append(Piece("audience", {"genres": self._genres(s.audience_genres)}))
        if s.years:
            wishes.append(Piece("years", {}))
        if wishes:
            return min(wishes, key=lambda p: used[p.kind])  # stable: the first of the least used kinds
        for piece in (self._rating(ev.catalog, notable=True), self._popular(ev.catalog, notable=True),
                      self._rating(ev.catalog, notable=False)):
            if piece and piece.kind != lead.kind:
                return piece
        if lead.kind not in ("popular", "viewers"):  # a lone short sentence would say too little: add the audience
            return self._viewers(ev.catalog)
        return None

    def _connection(self, ev: Evidence) -> Piece:
        c = ev.connections[0]
        fields = {"source": self.title_name(c.item_id, c.title), "fans": _number(c.fans), "also": _number(c.also),
                  "percent": str(c.percent)}
        if c.lift >= MIN_LIFT:
            fields["lift"] = f"{c.lift:.1f}"
        return Piece("connection_loved" if c.measure == "loved" else "connection_watched", fields)

    def _rating(self, k: CatalogStats | None, notable: bool) -> Piece | None:
        if k is None or k.rating_mean is None or k.rating_count < MIN_RATINGS_QUOTED:
            return None
        if notable and not (k.notable_rating and k.rating_scale and k.rating_mean >= NOTABLE_MEAN_SHARE * k.rating_scale):
            return None
        fields = {"mean": f"{k.rating_mean:.1f}", "count": _number(k.rating_count)}
        if k.rating_scale:
            fields["scale"] = str(k.rating_scale)
        return Piece("rating", fields)

    def _popular(self, k: CatalogStats | None, notable: bool) -> Piece | None:
        if k is None or not k.viewers or (notable and k.top_percent > NOTABLE_TOP_PERCENT):
            return None
        return Piece("popular", {"rank": _number(k.popularity_rank), "size": _number(k.catalog_size),
                                 "top": str(k.top_percent), "viewers": _number(k.viewers)})

    def _viewers(self, k: CatalogStats | None) -> Piece | None:
        return Piece("viewers", {"viewers": _number(k.viewers)}) if k is not None and k.viewers else None

    def _signal(self, ev: Evidence) -> Piece | None:
        """The strongest retrieval signal whose name says what it is (names are not assumed beyond these words)."""
        for signal in ev.signals:
            name = signal.name.lower()
            if any(w in name for w in ("semantic", "text", "query", "embed")):
                return Piece("semantic", {})
            if any(w in name for w in ("collab", "ease", "sasrec", "knn", "cf")):
                return Piece("collaborative", {})
        return None

    # ------------------------------------------------------------------ wording
    def _genres(self, genres: Sequence[str]) -> str:
        """"Comedy", "Comedy and Romance", "Comedy, Romance and Drama" (in the writer's language)."""
        names = [self.genre_name(g) for g in genres]
        if len(names) <= 2:
            return self.join["pair"].join(names)
        return self.join["list"].join(names[:-1]) + self.join["pair"] + names[-1]

    def _render(self, piece: Piece, used: Counter) -> str:
        """The kind's next frame whose fields the piece has (frames in turn across the reply)."""
        options = self.frames[piece.kind]
        start = used[piece.kind]
        for step in range(len(options)):
            frame = options[(start + step) % len(options)]
            if frame_fields(frame) <= set(piece.fields):
                used[piece.kind] = start + step + 1
                return frame.format(**piece.fields)
        raise ValueError(f"no {piece.kind!r} frame in {self.language!r} fits the fields {sorted(piece.fields)}")


def item_evidence(item: Item, asked_genres: Sequence[str] = ()) -> Evidence:
    """Evidence from the item alone (no log statistics): its viewer count and the asked-for genres it has."""
    genres = [g for g in item.genres if g in set(asked_genres)]
    satisfied = Satisfied(genres=genres, asked_genres=len(set(asked_genres)),
                          all_genres=len(set(asked_genres)) >= 2 and set(asked_genres) <= set(item.genres))
    return Evidence(item_id=item.item_id, satisfies=satisfied,
                    catalog=CatalogStats(viewers=item.popularity) if item.popularity else None)
