"""Scoring conversations against machine-checkable expectations (`marquee eval-chat`, tests/agent).

The public set is package data (agent/data/conversations.jsonl; how it is built and kept honest:
agent/data/README.md). A case is one JSON line: {"id", "family", "split": "tune" | "test", "user_id"?,
"turns": [{"user": MSG, "expect": {...}}]}. Every expectation is a fact about the catalog items returned or
the session state, never a hand-written answer. Keys:
- items: genres_any, genres_all, both_at_least ({"genres": [...], "fraction": f}: at least f of the picks
  have two or more of the genres), exclude_genres, year_min, year_max, count, exclude_titles (catalog labels);
- understanding: state_genres, state_exclude_genres (exactly these), absent_genres (neither wanted nor
  excluded), liked_titles, anchor_titles, seen_titles, disliked_titles (labels the session recorded),
  no_titles (none recorded: chit-chat is not a title), understood_contains, language;
- reply: text_contains, not_text_contains, no_fallback (not a silent popularity list), help_reply (no picks,
  the one-line help instead), reply_language ("zh": the header and every explanation are Chinese; "en": the text
  has no Chinese), chinese_names_shown (every pick with a known Chinese name shows it), distinct_explanations (no
  two explanations share a five-word sequence), evidence_cites (labels: each is a connection or shared-genre
  title in the evidence of at least half of the picks);
- multi-turn: older_than_previous, newer_than_previous, no_repeat_previous, excluded_previous_positions
  (1-based), user_history_excluded (a catalog user id).
Every turn is also checked for validity: real catalog items, no duplicates, nothing the user liked, named
as an anchor, saw or disliked; a reply in the message's language; no phrase repeated between explanations; no
explanation stating a genre, year, title or number its item and evidence do not support.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import re
import statistics
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from agent.locale import strings
from agent.replies import Reply, ReplyItem
from agent.understanding.lexicon import load_lexicon
from retrieval.catalog.schema import Catalog
from retrieval.evidence import numbers_in

# The public conversation set is package data (agent/data/conversations.jsonl), so eval-chat works from a wheel.
DEFAULT_CASES = resources.files("agent").joinpath("data/conversations.jsonl")
SPLITS = ("tune", "test")
TEST_FRACTION = 0.2  # of every family, held back: never used to tune the lexicon
YEAR_IN_TEXT = re.compile(r"\b(1[89]\d\d|20\d\d)\b")
CJK = re.compile(r"[\u4e00-\u9fff]")
PHRASE_WORDS = 5  # explanations of one reply may not share a sequence of this many words
# Words for the repeated-phrase check. Chinese has no spaces: a character counts as a word, except the genre names
# replies use ("科幻"), as "Sci-Fi" is one word in English.
_WORD = re.compile("|".join([*sorted(map(re.escape, strings("zh")["genres"].values()), key=len, reverse=True),
                             r"\d[\d,.]*", r"[A-Za-z][A-Za-z'-]*", r"[\u4e00-\u9fff]"]))
_FILM_NAME = re.compile(r"《[^》]*》")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])")


def load_cases(path=DEFAULT_CASES, split: str = "all") -> list[dict]:
    """The cases of `path` (default: the packaged set), all or one split ("tune" / "test")."""
    if split not in (*SPLITS, "all"):
        raise ValueError(f"split must be one of tune, test, all; got {split!r}")
    cases = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                case = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not JSON ({exc.msg})") from None
            if not isinstance(case.get("turns"), list) or not case.get("id"):
                raise ValueError(f"{path}:{n}: a case needs an 'id' and a list of 'turns'")
            if split == "all" or case.get("split", "tune") == split:
                cases.append(case)
    return cases


def assign_splits(cases: list[dict]) -> dict[str, str]:
    """case id -> "tune" | "test": in every family the cases with the smallest hash of their id form the
    test split (TEST_FRACTION of the family, at least one when it has two or more). Stable: adding a case
    to one family never moves cases of another, and the hash, not the author, picks the held-back ones."""
    families: dict[str, list[str]] = defaultdict(list)
    for case in cases:
        families[case.get("family", "misc")].append(case["id"])
    split = {}
    for ids in families.values():
        ranked = sorted(ids, key=lambda i: hashlib.sha256(i.encode("utf-8")).hexdigest())
        n_test = max(1, int(len(ids) * TEST_FRACTION + 0.5)) if len(ids) >= 2 else 0
        split.update({i: ("test" if n < n_test else "tune") for n, i in enumerate(ranked)})
    return split


def grounding_violations(item: ReplyItem, catalog: Catalog, allowed_titles: set[str] = frozenset()) -> list[str]:
    """Facts in an explanation that are not true of the item: another genre, another year, another title, or a
    number that is not in the item's evidence."""
    text = item.explanation
    titles = {t.rsplit(" (", 1)[0] for t in _evidence_titles(item)}
    allowed_titles = set(allowed_titles) | titles
    problems = [f"genre {g}" for g in catalog.genres() if re.search(rf"\b{re.escape(g)}\b", text) and g not in item.genres]
    bare = _without_titles(text, {item.label, *_evidence_titles(item)})
    problems += [f"year {y}" for y in YEAR_IN_TEXT.findall(bare) if item.year is None or int(y) != item.year]
    if item.evidence is not None:
        problems += [f"number {n}" for n in sorted(numbers_in(bare) - item.evidence.numbers() - {str(item.year)})]
    for other in catalog:
        if (other.item_id != item.item_id and len(other.title) >= 8 and other.title in text
                and other.title not in item.title and not any(other.title in t for t in allowed_titles)):
            problems.append(f"title {other.title}")
    return problems


_MARKS = itertools.count()


def _mark(_match=None) -> str:
    """A word that occurs nowhere else (letters only, so the word pattern keeps it whole)."""
    n, letters = next(_MARKS), ""
    while True:
        n, r = divmod(n, 26)
        letters += chr(ord("a") + r)
        if not n:
            return f" titlemark{letters} "


def _without_titles(text: str, labels) -> str:
    """`text` with catalog labels and 《Chinese names》 replaced by a unique mark each (a title is not a phrase)."""
    for label in sorted(set(labels), key=len, reverse=True):
        text = re.sub(re.escape(label), _mark, text)
    return _FILM_NAME.sub(_mark, text)


def phrase_words(text: str) -> list[str]:
    """The words of a text as the repeated-phrase check counts them."""
    return [w.lower() for w in _WORD.findall(text)]


def shared_phrases(items: list[ReplyItem], n: int = PHRASE_WORDS) -> list[tuple[str, ...]]:
    """Word sequences of length n that two explanations of one reply share (titles excluded)."""
    labels = {it.label for it in items}
    labels |= {label for it in items if it.evidence for _, label in it.evidence.titles()}
    seen: dict[tuple[str, ...], int] = {}
    shared = []
    for k, it in enumerate(items):
        grams = set()
        for sentence in _SENTENCE_END.split(_without_titles(it.explanation, labels)):  # a phrase ends with its sentence
            words = phrase_words(sentence)
            grams |= {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}
        for gram in grams:
            if gram in seen and seen[gram] != k:
                shared.append(gram)
            seen.setdefault(gram, k)
    return shared


def in_language(reply: Reply, language: str) -> bool:
    """Is the reply's own wording in `language`? "zh": its first line and every explanation hold Chinese;
    "en": no Chinese anywhere (titles are English in the catalog)."""
    if language == "zh":
        first = reply.text.split("\n", 1)[0]
        return bool(CJK.search(first)) and all(CJK.search(it.explanation) for it in reply.items)
    return not CJK.search(reply.text)


def _evidence_titles(item: ReplyItem) -> set[str]:
    return {label for _, label in item.evidence.titles()} if item.evidence else set()


@dataclass
class TurnCheck:
    case: str
    turn: int
    message: str
    failures: list[str] = field(default_factory=list)
    checks: int = 0
    seconds: float = 0.0


@dataclass
class EvalReport:
    turns: list[TurnCheck]
    invalid: dict[str, int]  # out_of_catalog / duplicates / liked_returned / seen_returned / disliked_returned
    grounding_violations: int
    explanations: int
    latencies: list[float]
    fallbacks: int = 0  # picks shown although nothing was understood, now or before: a popularity list
    repeated_phrases: int = 0  # replies in which two explanations share a five-word sequence
    wrong_language: int = 0  # replies not in the language of their message

    @property
    def checks(self) -> int:
        return sum(t.checks for t in self.turns)

    @property
    def failures(self) -> list[str]:
        return [f"{t.case}#{t.turn} {t.message[:40]!r}: {f}" for t in self.turns for f in t.failures]

    @property
    def satisfaction(self) -> float:
        return 1.0 - len(self.failures) / max(self.checks, 1)

    def summary(self) -> dict:
        lat = sorted(self.latencies)
        p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))] if lat else 0.0
        return {"cases": len({t.case for t in self.turns}), "turns": len(self.turns), "checks": self.checks,
                "constraint_satisfaction": round(self.satisfaction, 4), "failed_checks": len(self.failures),
                **self.invalid, "popularity_fallbacks": self.fallbacks, "explanations": self.explanations,
                "grounding_violations": self.grounding_violations, "repeated_phrases": self.repeated_phrases,
                "wrong_language": self.wrong_language,
                "turn_p50_s": round(statistics.median(lat), 3) if lat else 0.0, "turn_p95_s": round(p95, 3)}


def _check(expect: dict, reply: Reply, prev: Reply | None, agent, catalog: Catalog, tc: TurnCheck) -> None:
    items = reply.items

    def check(ok: bool, what: str) -> None:
        tc.checks += 1
        if not ok:
            tc.failures.append(what)

    if "count" in expect:
        check(len(items) == expect["count"], f"count {len(items)} != {expect['count']}")
    for it in items:
        if "genres_any" in expect:
            check(bool(set(it.genres) & set(expect["genres_any"])), f"{it.label} lacks {expect['genres_any']}")
        if "exclude_genres" in expect:
            check(not set(it.genres) & set(expect["exclude_genres"]), f"{it.label} has excluded genre")
        if "year_min" in expect:
            check(it.year is not None and it.year >= expect["year_min"], f"{it.label} before {expect['year_min']}")
        if "year_max" in expect:
            check(it.year is not None and it.year <= expect["year_max"], f"{it.label} after {expect['year_max']}")
        for label in expect.get("exclude_titles", ()):
            check(it.label != label, f"{label} was excluded")
        if "genres_all" in expect:
            check(set(expect["genres_all"]) <= set(it.genres), f"{it.label} lacks one of {expect['genres_all']}")
    if "both_at_least" in expect and len(items) >= 2:
        rule = expect["both_at_least"]
        both = sum(len(set(rule["genres"]) & set(it.genres)) >= 2 for it in items)
        check(both >= rule["fraction"] * len(items), f"only {both}/{len(items)} picks have two of {rule['genres']}")
    if "genres_any" in expect or "count" in expect or "genres_all" in expect:
        check(bool(items) or expect.get("count") == 0, "no items")
    state = reply.state
    for key in ("state_genres", "state_exclude_genres"):
        if key in expect:
            got = sorted(state.get(key.removeprefix("state_"), []))
            check(got == sorted(expect[key]), f"{key} {got} != {sorted(expect[key])}")
    for genre in expect.get("absent_genres", ()):
        check(genre not in state.get("genres", []) + state.get("exclude_genres", []), f"{genre} still in the state")
    for key, field_name in (("liked_titles", "liked"), ("anchor_titles", "anchors"), ("seen_titles", "seen"),
                            ("disliked_titles", "disliked")):
        recorded = {d["title"] for d in state.get(field_name, [])}
        for label in expect.get(key, ()):
            check(label in recorded, f"{label} not recorded as {field_name}: {sorted(recorded)}")
    if expect.get("no_titles"):
        named = [d["title"] for f in ("liked", "anchors", "seen", "disliked") for d in state.get(f, [])]
        check(not named, f"titles read into chit-chat: {named}")
    if "language" in expect:
        check(reply.language == expect["language"], f"language {reply.language} != {expect['language']}")
    if expect.get("no_fallback"):
        check(bool(items) and not is_fallback(reply), "a popularity fallback or no picks")
    if expect.get("help_reply"):
        check(not items and reply.text in load_lexicon().help.values(), "expected the one-line help")
    if "reply_language" in expect:
        check(in_language(reply, expect["reply_language"]), f"reply not in {expect['reply_language']}")
    if expect.get("chinese_names_shown"):
        missing = [it.label for it in items if it.title_zh and f"《{it.title_zh}》" not in reply.text]
        check(not missing, f"Chinese names not shown for {missing}")
    if expect.get("distinct_explanations"):
        phrases = shared_phrases(items)
        check(not phrases, f"explanations share {phrases[:3]}")
    for label in expect.get("evidence_cites", ()):
        citing = sum(label in _evidence_titles(it) for it in items)
        check(bool(items) and citing * 2 >= len(items), f"only {citing}/{len(items)} picks' evidence cites {label}")
    for phrase in expect.get("understood_contains", ()):
        check(phrase.lower() in reply.understood.lower(), f"understood lacks {phrase!r}: {reply.understood!r}")
    for phrase in expect.get("text_contains", ()):
        check(phrase.lower() in reply.text.lower(), f"text lacks {phrase!r}")
    for phrase in expect.get("not_text_contains", ()):
        check(phrase.lower() not in reply.text.lower(), f"text contains {phrase!r}")
    prev_items = prev.items if prev else []
    prev_years = [i.year for i in prev_items if i.year]
    if expect.get("older_than_previous") and prev_years:
        anchor = statistics.median(prev_years)
        for it in items:
            check(it.year is not None and it.year < anchor, f"{it.label} not older than {anchor}")
    if expect.get("newer_than_previous") and prev_years:
        anchor = statistics.median(prev_years)
        for it in items:
            check(it.year is not None and it.year > anchor, f"{it.label} not newer than {anchor}")
    if expect.get("no_repeat_previous"):
        shown = {i.item_id for i in prev_items}
        check(not shown & {i.item_id for i in items}, "repeats the previous list")
    for pos in expect.get("excluded_previous_positions", ()):
        if len(prev_items) >= pos:
            check(prev_items[pos - 1].item_id not in {i.item_id for i in items}, f"previous #{pos} shown again")
    if "user_history_excluded" in expect:
        history = agent.user_history(str(expect["user_history_excluded"]))
        check(not history & {i.item_id for i in items}, "recommends items from the user's history")


def evaluate(agent, cases: list[dict], progress=None) -> EvalReport:
    """Run every case in a fresh session and check each reply (plus validity and grounding)."""
    catalog = agent.catalog
    turns: list[TurnCheck] = []
    invalid = {"out_of_catalog": 0, "duplicates": 0, "liked_returned": 0, "seen_returned": 0, "disliked_returned": 0}
    fallbacks = repeated = wrong_language = 0
    violations = explanations = 0
    latencies: list[float] = []
    run = uuid.uuid4().hex[:8]
    for case in cases:
        sid = f"eval-{run}-{case['id']}"[:128]
        prev: Reply | None = None
        for n, turn in enumerate(case["turns"], start=1):
            tc = TurnCheck(case["id"], n, turn["user"])
            t0 = time.perf_counter()
            reply = agent.chat(turn["user"], session_id=sid, user_id=case.get("user_id"))
            tc.seconds = time.perf_counter() - t0
            latencies.append(tc.seconds)
            _check(turn.get("expect", {}), reply, prev, agent, catalog, tc)
            ids = [i.item_id for i in reply.items]
            invalid["out_of_catalog"] += sum(1 for i in ids if i not in catalog)
            invalid["duplicates"] += len(ids) - len(set(ids))
            state = agent.get_state(sid)
            for kind, fields in (("liked", ("liked", "anchors")), ("seen", ("seen",)), ("disliked", ("disliked",))):
                blocked = {d["item_id"] for f in fields for d in state.get(f, [])}
                invalid[f"{kind}_returned"] += sum(1 for i in ids if i in blocked)
            fallbacks += is_fallback(reply)
            repeated += bool(shared_phrases(reply.items))
            wrong_language += bool(reply.items) and not in_language(reply, "zh" if CJK.search(turn["user"]) else "en")
            liked = {d["title"].rsplit(" (", 1)[0] for d in state["liked"]}
            for item in reply.items:
                explanations += 1
                violations += bool(grounding_violations(item, catalog, liked))
            turns.append(tc)
            prev = reply if reply.items else prev
            if progress:
                progress(tc)
    return EvalReport(turns, invalid, violations, explanations, latencies, fallbacks, repeated, wrong_language)


def is_fallback(reply: Reply) -> bool:
    """Picks shown although nothing was understood from the message and nothing was said before."""
    s = reply.state
    said = (s.get("genres") or s.get("exclude_genres") or s.get("audience_genres") or s.get("moods")
            or s.get("query") or s.get("liked") or s.get("seen") or s.get("disliked") or s.get("user_id")
            or s.get("year_min") is not None or s.get("year_max") is not None)
    return bool(reply.items) and not reply.understood and not said
