"""The oracle filter, the ranker rows and the metrics of the conversational benchmark on hand-made cases."""
from __future__ import annotations

import math

import numpy as np
import pytest

from finetune.evaluation.conversational.attributes import RequestAttributes, satisfaction
from retrieval.config.conversational import ConversationalConfig, SystemSpec, Target
from finetune.evaluation.conversational.requests import BenchRequest, BenchUser
from finetune.evaluation.conversational.scoring import compare, score_picks, summarise, targets, type_rows
from finetune.evaluation.conversational.systems import RankerRows
from finetune.evaluation.rankers import BuildContext
from finetune.data.splits import leave_one_out
from retrieval.catalog.schema import Catalog, Item

ITEMS = [Item("1", "Alien", 1979, ("Horror", "Sci-Fi")), Item("2", "Blade Runner", 1982, ("Sci-Fi",)),
         Item("3", "Clueless", 1995, ("Comedy",)), Item("4", "Dune", 1984, ("Sci-Fi",)),
         Item("5", "Emma", 1996, ("Comedy", "Romance")), Item("6", "Fargo", 1996, ("Crime", "Thriller")),
         Item("7", "Undated", None, ("Sci-Fi",))]


@pytest.fixture
def catalog() -> Catalog:
    return Catalog(ITEMS, name="hand")


def test_attributes_are_the_oracle_filter(catalog):
    eighties_scifi = RequestAttributes(genres=frozenset({"Sci-Fi"}), year_min=1980, year_max=1989)
    assert eighties_scifi.mask(catalog).tolist() == [False, True, False, True, False, False, False]
    like_alien = RequestAttributes(genres=frozenset({"Horror", "Sci-Fi"}), anchor="1")  # "I loved Alien"
    assert like_alien.mask(catalog).tolist() == [False, True, False, True, False, False, True]
    vague = RequestAttributes()
    assert not vague.constrained and vague.mask(catalog).all()
    assert satisfaction([0, 2, 3], eighties_scifi, catalog) == pytest.approx(1 / 3)  # only Dune is 80s sci-fi
    assert math.isnan(satisfaction([], eighties_scifi, catalog))


def _request(user_id: str, kind: str, target: int, attributes=RequestAttributes()) -> BenchRequest:
    return BenchRequest(user_id=user_id, type=kind, text="…", target=target, attributes=attributes)


def test_metrics_on_a_hand_made_case(catalog):
    scifi = RequestAttributes(genres=frozenset({"Sci-Fi"}))
    requests = [_request("a", "genre", 3, scifi), _request("b", "genre", 1, scifi), _request("c", "vague", 5)]
    picks = [[1, 2, 3], [2, 4, 5, 0, 6, 1], []]  # target 3rd; target 6th (beyond 5); nothing returned
    scores = score_picks(picks, requests, catalog)
    assert scores["ndcg@5"] == pytest.approx([1 / math.log2(4), 0.0, 0.0])
    assert scores["hr@5"].tolist() == [1.0, 0.0, 0.0]
    # Blade Runner, Dune (not Clueless) | Alien, Undated among the first five (Blade Runner is 6th)
    assert scores["satisfaction"][:2] == pytest.approx([2 / 3, 2 / 5])
    assert math.isnan(scores["satisfaction"][2])  # vague asks for nothing
    assert scores["returned"].tolist() == [3.0, 5.0, 0.0]
    rows = type_rows(requests, ["genre", "vague"])
    summary = summarise(scores, rows)
    assert summary["genre"]["ndcg@5"] == pytest.approx(0.25)
    assert summary["vague"]["satisfaction"] is None and summary["all"]["requests"] == 3
    with pytest.raises(ValueError, match="pick lists"):
        score_picks(picks[:2], requests, catalog)


def test_bootstrap_against_the_reference_and_targets(catalog):
    requests = [_request(str(u), "genre", 0) for u in range(20)]
    perfect, never = [[0]] * 20, [[1]] * 20
    config = ConversationalConfig(systems=[SystemSpec(name="oracle", kind="ranker", ranker="mostpop", oracle=True),
                                           SystemSpec(name="chat", kind="agent"),
                                           SystemSpec(name="chat-new", kind="agent")],
                                  types=["genre"], bootstrap_samples=200,
                                  targets=[Target(type="genre", baseline="oracle", ratio=1.0),
                                           Target(type="all", baseline="chat", ratio=1.3)])
    half = [[0]] * 10 + [[1]] * 10
    per = {"oracle": score_picks(half, requests, catalog), "chat": score_picks(never, requests, catalog),
           "chat-new": score_picks(perfect, requests, catalog)}
    rows = type_rows(requests, ["genre"])
    cmp = compare(per, rows, config)
    assert set(cmp) == {"oracle", "chat-new"}  # the reference is not compared with itself
    assert cmp["chat-new"]["genre"]["diff"] == 1.0 and cmp["chat-new"]["genre"]["ci_low"] == 1.0
    assert cmp["oracle"]["genre"]["ci_low"] < 0.5 < cmp["oracle"]["genre"]["ci_high"]
    summary = {name: summarise(v, rows) for name, v in per.items()}
    got = {(t["system"], t["type"]): t for t in targets(summary, config)}
    assert got[("chat-new", "genre")]["ratio"] == 2.0 and got[("chat-new", "genre")]["met"] is True
    assert got[("chat", "genre")]["ratio"] == 0.0 and got[("chat", "genre")]["met"] is False
    assert got[("chat-new", "all")]["ratio"] is None  # today's chat scored 0: no ratio to report
    assert ("chat", "all") not in got  # a row is not measured against itself


def test_ranker_rows_exclude_the_history_and_obey_the_oracle(dataset_factory, tmp_path):
    genres = {0: ("Sci-Fi",), 1: ("Sci-Fi",), 2: ("Comedy",), 3: ("Comedy",), 4: ("Sci-Fi",), 5: ("Drama",)}
    rows = [("a", "1", 1), ("a", "2", 2), ("a", "6", 3), ("a", "5", 4),
            ("b", "1", 1), ("b", "3", 2), ("b", "4", 3), ("b", "2", 4), ("c", "1", 1), ("c", "3", 2), ("c", "4", 3),
            ("c", "5", 4), ("c", "6", 5)]
    dataset = dataset_factory(rows, 6, genres)
    split = leave_one_out(dataset.interactions)
    ctx = BuildContext(dataset=dataset, split=split, home=tmp_path, log=lambda m: None)
    user = BenchUser(user=0, user_id="a", history=(0,), ratings=(1.0,), target=4)
    ranker = RankerRows(ctx, [user], log=lambda m: None)
    comedy = RequestAttributes(genres=frozenset({"Comedy"}))
    plain = ranker.picks(SystemSpec(name="mostpop", kind="ranker", ranker="mostpop"), [_request("a", "genre", 4, comedy)])
    oracle = ranker.picks(SystemSpec(name="o", kind="ranker", ranker="mostpop", oracle=True),
                          [_request("a", "genre", 4, comedy)])
    assert 0 not in plain[0] and len(plain[0]) == 5  # the visible history is never picked back
    assert oracle[0] and all("Comedy" in dataset.catalog.at(i).genres for i in oracle[0])
    counts = np.bincount(split.train.items, minlength=6)
    assert plain[0][0] == int(np.argmax(np.where(np.arange(6) == 0, -1, counts)))  # most popular first


def test_config_rejects_inconsistent_systems():
    with pytest.raises(ValueError, match="needs ranker"):
        SystemSpec(name="x", kind="ranker")
    with pytest.raises(ValueError, match="only agent, llm, candidates"):
        SystemSpec(name="x", kind="agent", settings={"catalog": {"source": "x.csv"}})
    with pytest.raises(ValueError, match="unique"):
        ConversationalConfig(systems=[SystemSpec(name="chat", kind="agent"), SystemSpec(name="chat", kind="agent")])
    with pytest.raises(ValueError, match="reference"):
        ConversationalConfig(systems=[SystemSpec(name="a", kind="agent")])
    with pytest.raises(ValueError, match="unknown request type"):
        ConversationalConfig(types=["vague", "gossip"])


def test_only_known_full_rankers_can_be_rows():
    from finetune.evaluation.conversational.runner import check_systems

    chat = SystemSpec(name="chat", kind="agent")
    with pytest.raises(ValueError, match="unknown ranker"):
        check_systems(ConversationalConfig(systems=[SystemSpec(name="x", kind="ranker", ranker="nope"), chat]))
    with pytest.raises(ValueError, match="rerank another ranker's list"):
        check_systems(ConversationalConfig(systems=[SystemSpec(name="x", kind="ranker", ranker="llm-lora"), chat]))
    check_systems(ConversationalConfig())  # the default rows: mostpop, sasrec+ease (± oracle), chat
