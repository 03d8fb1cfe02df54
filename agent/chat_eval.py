"""Scoring conversations against machine-checkable expectations (`marquee eval-chat`, tests/agent).

A case is one JSON line: {"id", "user_id"?, "turns": [{"user": MSG, "expect": {...}}]}. Expectation keys:
genres_any, exclude_genres, year_min, year_max, count, exclude_titles (catalog labels), understood_contains,
text_contains, not_text_contains, older_than_previous, newer_than_previous, no_repeat_previous,
excluded_previous_positions (1-based), user_history_excluded (a catalog user id).
Every turn is also checked for validity: real catalog items, no duplicates, nothing seen or disliked.
"""
from __future__ import annotations

import importlib.resources
import json
import re
import statistics
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from agent.replies import Reply, ReplyItem
from retrieval.catalog.schema import Catalog

# The public conversation set is package data (agent/data/conversations.jsonl), so eval-chat works from a wheel.
DEFAULT_CASES = Path(str(importlib.resources.files("agent") / "data" / "conversations.jsonl"))
YEAR_IN_TEXT = re.compile(r"\b(1[89]\d\d|20\d\d)\b")


def load_cases(path: Path = DEFAULT_CASES) -> list[dict]:
    cases = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                case = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not JSON ({exc.msg})") from None
            if not isinstance(case.get("turns"), list) or not case.get("id"):
                raise ValueError(f"{path}:{n}: a case needs an 'id' and a list of 'turns'")
            cases.append(case)
    return cases


def grounding_violations(item: ReplyItem, catalog: Catalog, allowed_titles: set[str] = frozenset()) -> list[str]:
    """Facts in an explanation that are not true of the item: another genre, another year, another title."""
    text = item.explanation
    problems = [f"genre {g}" for g in catalog.genres() if re.search(rf"\b{re.escape(g)}\b", text) and g not in item.genres]
    problems += [f"year {y}" for y in YEAR_IN_TEXT.findall(text) if item.year is None or int(y) != item.year]
    for other in catalog:
        if (other.item_id != item.item_id and len(other.title) >= 8 and other.title in text
                and other.title not in item.title and other.title not in allowed_titles):
            problems.append(f"title {other.title}")
    return problems


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
    invalid: dict[str, int]  # out_of_catalog / duplicates / already_seen
    grounding_violations: int
    explanations: int
    latencies: list[float]

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
                **self.invalid, "explanations": self.explanations,
                "grounding_violations": self.grounding_violations,
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
    if "genres_any" in expect or "count" in expect:
        check(bool(items) or expect.get("count") == 0, "no items")
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
    invalid = {"out_of_catalog": 0, "duplicates": 0, "already_seen": 0}
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
            blocked = {d["item_id"] for d in state["seen"] + state["disliked"]}
            invalid["already_seen"] += sum(1 for i in ids if i in blocked)
            liked = {d["title"].rsplit(" (", 1)[0] for d in state["liked"]}
            for item in reply.items:
                explanations += 1
                violations += bool(grounding_violations(item, catalog, liked))
            turns.append(tc)
            prev = reply if reply.items else prev
            if progress:
                progress(tc)
    return EvalReport(turns, invalid, violations, explanations, latencies)
