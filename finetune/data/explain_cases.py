"""(request, pick, evidence) cases for the explainer: what the chat really answers, on the train split only.

Each case is one pick of a real reply of `RecommenderAgent` (planner mode, template explanations, no LLM) over
`RetrievalService.with_interactions(train split)`, so its evidence (connections, ratings, popularity) is what
serving would show and no held-out interaction is in it. Requests: the known-user requests of the
request-conditioned benchmark (vague, genre, genre + decade, "I loved X"; the user's validation item plays the
target, never a test item) and anonymous sessions naming liked titles, genre pairs, moods, the family audience,
decades with exclusions (finetune/data/explain_requests.toml); some carry text that tries to steer the model.

Users are split once, by a seeded shuffle: `heldout_users` users give the held-out cases (evaluation only), the
others the training cases, so no user, request or reply is in both.

    cases = build_cases(settings, dataset, train_replies=1200, heldout_replies=100)
    write_cases(cases, path); read_cases(path)
"""
from __future__ import annotations

import json
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from agent.llm.pick_facts import PickContext
from retrieval.catalog.schema import Catalog, Dataset
from retrieval.evidence import MIN_FANS, Evidence

KNOWN_KINDS = ("vague", "genre", "genre-decade", "loved")  # the benchmark's request types, as the known user
ANONYMOUS_KINDS = ("anchor", "liked", "pair", "mood", "family", "decade_exclude")
KINDS = tuple(f"known-{k}" for k in KNOWN_KINDS) + ANONYMOUS_KINDS
INJECTION_SHARE = 0.1  # of requests that carry text trying to steer the model
LOVED = 4.0  # a rating from which a film counts as loved (MovieLens 1–5)


@cache
def phrasings() -> dict:
    return tomllib.loads(resources.files(__package__).joinpath("explain_requests.toml").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class ExplainCase:
    """One pick of one reply, with everything its explanation may draw on."""

    case_id: str  # "<reply_id>:<position>"
    split: str  # "train" | "heldout"
    reply_id: str
    position: int  # 0-based place in the reply
    kind: str  # the request kind (KINDS)
    user_id: str | None  # the known catalog user, None for an anonymous session
    request: str
    wishes: str  # what the agent understood (agent.llm_parts.request_text)
    liked: tuple[str, ...]
    asked_genres: tuple[str, ...]
    item_id: str
    evidence: dict = field(repr=False)

    def context(self, catalog: Catalog) -> PickContext:
        return PickContext(item=catalog[self.item_id], evidence=Evidence.model_validate(self.evidence),
                           request=self.request, wishes=self.wishes, liked=self.liked,
                           asked_genres=self.asked_genres)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> "ExplainCase":
        return cls(**{**row, "liked": tuple(row.get("liked", ())), "asked_genres": tuple(row.get("asked_genres", ()))})


@dataclass(frozen=True)
class DescribeCase:
    """One catalog item to describe, with the evidence of its audience and ratings (from the train split)."""

    case_id: str  # "describe-<item_id>"
    split: str  # "train" | "heldout"
    item_id: str
    evidence: dict = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> "DescribeCase":
        return cls(**row)


def build_describe_cases(dataset: Dataset, train_items: int, heldout_items: int, seed: int = 0,
                         interactions=None) -> list[DescribeCase]:
    """Items to describe, split once by a seeded shuffle; evidence from `interactions` (default: the train split
    of the leave-one-out protocol, as the explanation cases)."""
    from finetune.data.splits import leave_one_out
    from finetune.evaluation.conversational.isolation import visible_interactions
    from retrieval.evidence import LogEvidence

    if interactions is None:
        interactions = visible_interactions(leave_one_out(dataset.interactions), "validation")  # train rows only
    log = LogEvidence(dataset.catalog, interactions)
    order = np.random.default_rng([seed, 7]).permutation(len(dataset.catalog))
    cases = []
    for split_name, indices in (("heldout", order[:heldout_items]),
                                ("train", order[heldout_items:heldout_items + train_items])):
        for index in indices.tolist():
            item = dataset.catalog.at(index)
            evidence = Evidence(item_id=item.item_id, connections=log.audience(index), catalog=log.stats(index))
            cases.append(DescribeCase(case_id=f"describe-{item.item_id}", split=split_name, item_id=item.item_id,
                                      evidence=evidence.model_dump()))
    return cases


def write_cases(cases: Iterable[ExplainCase | DescribeCase], path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(c.to_json(), ensure_ascii=False) + "\n" for c in cases), encoding="utf-8")
    tmp.replace(path)
    return path


def read_cases(path: Path) -> list[ExplainCase | DescribeCase]:
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [ExplainCase.from_json(r) if "reply_id" in r else DescribeCase.from_json(r) for r in rows]


def replies(cases: Sequence[ExplainCase]) -> dict[str, list[ExplainCase]]:
    """reply_id -> its cases in reply order."""
    out: dict[str, list[ExplainCase]] = {}
    for case in cases:
        out.setdefault(case.reply_id, []).append(case)
    return {k: sorted(v, key=lambda c: c.position) for k, v in out.items()}


class RequestMaker:
    """The request of one (user, kind), from the user's visible history; None when the user cannot make it."""

    def __init__(self, catalog: Catalog, visible, seed: int):
        from finetune.evaluation.conversational.requests import RequestWriter, phrasings as bench_phrasings

        self.catalog = catalog
        self.seed = seed
        self.writer = RequestWriter(catalog, seed=seed)
        self.words = phrasings()
        self.genre_words: dict[str, str] = bench_phrasings()["genre_words"]
        loved = visible.ratings >= LOVED
        self.fans = np.bincount(visible.items[loved], minlength=len(catalog))

    def make(self, user, kind: str, rng: np.random.Generator) -> str | None:
        from finetune.evaluation.conversational.requests import BenchRequest, spoken_title

        if kind.startswith("known-"):
            request = self.writer.request(user, kind.removeprefix("known-"))
            return request.text if isinstance(request, BenchRequest) else None
        loved = [i for i, r in dict(zip(user.history, user.ratings)).items() if r >= LOVED and self.fans[i] >= MIN_FANS]
        if kind in ("anchor", "liked") and len(loved) < (1 if kind == "anchor" else 2):
            return None
        picks = [self.catalog.at(int(i)) for i in rng.choice(loved, size=min(2, len(loved)), replace=False)] \
            if loved else []
        genres = sorted({g for it in picks for g in it.genres} or {g for i in user.history[-10:]
                                                                    for g in self.catalog.at(i).genres})
        if not genres:
            return None
        others = [g for g in self.catalog.genres() if g not in genres] or genres
        order = rng.permutation(len(genres))
        genre, genre2 = genres[order[0]], genres[order[-1]] if len(genres) > 1 else others[0]
        years = [self.catalog.at(i).year for i in user.history if self.catalog.at(i).year]
        decade = (int(np.median(years)) // 10 * 10) if years else 1990
        fields = {"title": spoken_title(picks[0].title) if picks else "",
                  "title2": spoken_title(picks[1].title) if len(picks) > 1 else "",
                  "genre": self.word(genre), "genre2": self.word(genre2),
                  "other": self.word(others[int(rng.integers(len(others)))]),
                  "decade": f"{decade % 100:02d}s" if decade < 2000 else f"{decade}s",
                  "mood": self.words["extras"]["moods"][int(rng.integers(len(self.words["extras"]["moods"])))]}
        if kind == "family":
            fields["genre"] = self.word(next((g for g in genres if g in ("Comedy", "Adventure", "Animation")),
                                             "Comedy"))
        options = self.words["phrasings"][kind]
        text = options[int(rng.integers(len(options)))].format(**fields)
        return text[:1].upper() + text[1:]

    def word(self, genre: str) -> str:
        return self.genre_words.get(genre, genre.lower())

    def injected(self, text: str, rng: np.random.Generator) -> str:
        if rng.random() >= INJECTION_SHARE:
            return text
        options = self.words["extras"]["injection"]
        return text + options[int(rng.integers(len(options)))]


def build_cases(settings, dataset: Dataset, train_replies: int, heldout_replies: int, seed: int = 0,
                heldout_users: int = 150, log: Callable[[str], None] = print, service=None) -> list[ExplainCase]:
    """Run the chat on generated requests and keep each pick with its evidence (see the module docstring)."""
    from agent.core import RecommenderAgent
    from agent.llm_parts import request_text
    from agent.storage import Storage
    from finetune.data.splits import leave_one_out
    from finetune.evaluation.conversational.isolation import visible_histories, visible_interactions
    from finetune.evaluation.conversational.requests import bench_users
    from retrieval.service import RetrievalService

    split = leave_one_out(dataset.interactions)
    visible = visible_interactions(split, "validation")  # the train split only: no validation or test item
    users = np.random.default_rng(seed).permutation(split.evaluated_users)
    held, train = users[:heldout_users], users[heldout_users:]
    agent_settings = settings.model_copy(update={"agent": settings.agent.model_copy(
        update={"rerank": False, "explain": "template", "mode": "planner"})})
    service = (service or RetrievalService(agent_settings, dataset=dataset)).with_interactions(visible)
    folder = tempfile.TemporaryDirectory(prefix="marquee-explain-cases-")
    agent = RecommenderAgent(agent_settings, service=service, storage=Storage(Path(folder.name) / "cases.db"))
    maker = RequestMaker(dataset.catalog, visible, seed)
    cases: list[ExplainCase] = []
    try:
        for split_name, pool, wanted in (("heldout", held, heldout_replies), ("train", train, train_replies)):
            people = bench_users(visible, visible_histories(split, "validation", pool), pool,
                                 [int(split.interactions.items[split.validation_rows[u]]) for u in pool])
            made, attempt = 0, 0
            while made < wanted and attempt < 4 * wanted + len(people):
                user = people[attempt % len(people)]
                kind = KINDS[(attempt + attempt // len(people)) % len(KINDS)]
                rng = np.random.default_rng([seed, user.user, attempt])
                attempt += 1
                text = maker.make(user, kind, rng)
                if text is None:
                    continue
                text = maker.injected(text, rng)
                reply_id = f"{split_name}-{made:05d}"
                known = kind.startswith("known-")
                reply = agent.chat(text, session_id=reply_id, user_id=user.user_id if known else None)
                if not reply.items:
                    continue
                state = agent.session_state(reply_id)
                liked = tuple(dataset.catalog[i].label for i in dict.fromkeys([*state.anchors, *state.liked])
                              if i in dataset.catalog)
                for position, item in enumerate(reply.items):
                    cases.append(ExplainCase(
                        case_id=f"{reply_id}:{position}", split=split_name, reply_id=reply_id, position=position,
                        kind=kind, user_id=user.user_id if known else None, request=text,
                        wishes=request_text(state, ""), liked=liked, asked_genres=tuple(state.genres),
                        item_id=item.item_id, evidence=item.evidence.model_dump() if item.evidence else {}))
                made += 1
            log(f"{split_name}: {made} replies, {sum(c.split == split_name for c in cases)} picks")
    finally:
        folder.cleanup()
    return cases
