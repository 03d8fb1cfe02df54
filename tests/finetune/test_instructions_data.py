"""Instruction data for the reranker: no validation/test leak, exact prompt format, uniform label positions."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from agent.llm.prompting import LabelSet, encode
from agent.llm.scorers import create_scorer
from agent.llm.scorers.listwise import build_rerank_prompt
from finetune.data.instructions import (InstructionDataset, build_instances, fit_retriever, permutation,
                                        retriever_split, target_positions, user_summary)
from finetune.training.config import load_finetune_settings

TARGETS = 4


@pytest.fixture(scope="module")
def ease_instances(ml100k, ml100k_split, tmp_path_factory):
    """Every ML-100k user's last TARGETS train positions, candidates from EASE fitted on the nested split."""
    home = tmp_path_factory.mktemp("instr-home")
    inner = retriever_split(ml100k_split, TARGETS)
    proposer = fit_retriever("ease", inner, ml100k, home)
    return inner, build_instances(ml100k_split, proposer, TARGETS, candidates=20, min_history=3)


@pytest.fixture(scope="module")
def tokenizer(shared_home):
    from transformers import AutoTokenizer

    from agent.llm.loading import convert_embedded

    return AutoTokenizer.from_pretrained(convert_embedded(shared_home))


def _rows_by_user(inter, rows):
    out: dict[int, set[tuple[int, int]]] = {}
    for r in rows:
        out.setdefault(int(inter.users[r]), set()).add((int(inter.items[r]), int(inter.timestamps[r])))
    return out


def test_no_validation_or_test_item_reaches_training(ml100k_split, ease_instances):
    split, (inner, instances) = ml100k_split, ease_instances
    inter = split.interactions
    held = {u: {int(inter.items[split.validation_rows[u]]), int(inter.items[split.test_rows[u]])}
            for u in split.evaluated_users}
    assert len(instances) == TARGETS * len(split.evaluated_users)  # every ML-100k user has ≥ 18 train items
    for inst in instances:
        seq = split.train_sequences[inst.user]
        p = len(inst.history)
        assert inst.history == seq[:p] and inst.target == seq[p], "history must be the items before the target"
        assert p >= len(seq) - TARGETS
        assert not (held[inst.user] & {inst.target, *inst.history}), f"held-out item leaked for user {inst.user}"
    # The retriever proposing candidates was fitted on train rows only, and without the instruction targets.
    train_rows = _rows_by_user(inter, split.train_rows)
    inner_train = _rows_by_user(inner.interactions, inner.train_rows)
    assert all(rows <= train_rows[u] for u, rows in inner_train.items())
    held_rows = _rows_by_user(inter, np.concatenate([split.validation_rows, split.test_rows]))
    assert all(not (rows & held_rows.get(u, set())) for u, rows in inner_train.items())
    inner_items = {u: {i for i, _ in rows} for u, rows in inner_train.items()}
    assert not any(inst.target in inner_items.get(inst.user, set()) for inst in instances)


def test_candidates_are_hard_negatives_with_the_target_once(ease_instances):
    _, instances = ease_instances
    for inst in instances:
        assert len(inst.candidates) == 20 and len(set(inst.candidates)) == 20
        assert inst.candidates.count(inst.target) == 1
        assert not set(inst.candidates) & (set(inst.history) - {inst.target})
        if not inst.retriever_hit:
            assert inst.target_index == 19  # inserted in place of the weakest candidate
    hit_rate = np.mean([i.retriever_hit for i in instances])
    assert 0.1 < hit_rate < 0.9  # hard negatives: the retriever finds some targets, not all


def test_example_is_the_inference_prompt_plus_the_target_label(tokenizer, ml100k, ease_instances):
    _, instances = ease_instances
    labels = LabelSet.for_tokenizer(tokenizer, 20)
    data = InstructionDataset(instances[:50], create_scorer("listwise", tokenizer, history_items=10), ml100k.catalog,
                              seed=3)
    for index in (0, 17, 49):
        inst, example = instances[index], data[index]
        order = permutation(3, 0, index, 20)
        prompt = build_rerank_prompt(tokenizer, user_summary(ml100k.catalog, inst.history, 10),
                                     [ml100k.catalog.at(i).label for i in inst.candidates], labels=labels,
                                     order=order)
        ids = encode(tokenizer, prompt.text)
        assert example["input_ids"][:-1] == ids
        label = tokenizer.decode([example["input_ids"][-1]])
        assert example["labels"] == [-100] * len(ids) + [example["input_ids"][-1]]
        assert f"\n{label}. {ml100k.catalog.at(inst.target).label}" in prompt.text
        assert label == labels.labels[example["position"]]
        recent = [ml100k.catalog.at(i).label for i in inst.history[-10:]]
        assert "; ".join(recent) in prompt.text  # the 10 most recent history items, oldest first


def test_label_positions_are_uniform_and_change_every_epoch(ease_instances):
    _, instances = ease_instances
    positions = Counter(permutation(0, 0, k, 20).index(inst.target_index) for k, inst in enumerate(instances))
    expected = len(instances) / 20
    assert set(positions) == set(range(20))
    chi2 = sum((positions[p] - expected) ** 2 / expected for p in range(20))
    assert chi2 < 43.8  # chi-square, 19 degrees of freedom, p = 0.001
    # The retriever order alone is far from uniform (targets sit near the top): permutation is what fixes it.
    raw = Counter(inst.target_index for inst in instances)
    assert sum((raw[p] - expected) ** 2 / expected for p in range(20)) > 10 * chi2
    assert permutation(0, 0, 5, 20) != permutation(0, 1, 5, 20)
    assert permutation(0, 2, 5, 20) == permutation(0, 2, 5, 20)  # reproducible, so resume sees the same data


def test_target_positions_respect_min_history(ml100k_split):
    short = target_positions(ml100k_split, targets_per_user=50, min_history=15, users=[0, 1])
    assert all(len(h) >= 15 for _, h, _ in short)
    assert len({u for u, _, _ in short}) == 2


def test_reranker_as_retriever_is_refused(ml100k, ml100k_split, tmp_path):
    with pytest.raises(ValueError, match="reranker"):
        fit_retriever("llm-lora", ml100k_split, ml100k, tmp_path)
    with pytest.raises(ValueError, match="unknown ranker"):
        fit_retriever("no-such-model", ml100k_split, ml100k, tmp_path)


def test_config_errors_are_clear(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "marquee.toml"
    bad.write_text("[finetune]\nlora_rnak = 8\n")
    with pytest.raises(ValueError, match=r"unknown key 'lora_rnak' in \[finetune\]; did you mean 'lora_rank'"):
        load_finetune_settings(bad)
    bad.write_text("[finetune]\nloss = 'mse'\nfusion_grid = [0.5, 1.0]\n")
    with pytest.raises(ValueError, match="loss must be one of.*fusion_grid"):
        load_finetune_settings(bad)
    bad.unlink()  # ./marquee.toml would be read by default
    with pytest.raises(ValueError, match="unknown scorer 'pairwise'; registered scorers: .*segments"):
        load_finetune_settings(None, scorer="pairwise")
    with pytest.raises(FileNotFoundError):
        load_finetune_settings(tmp_path / "missing.toml")
    good = tmp_path / "ok.toml"
    good.write_text("[finetune]\nlora_rank = 4\nretriever = 'ease'\nmax_users = 100\n")
    cfg = load_finetune_settings(good, quick=True, max_steps=3).finetune
    # file < quick overlay < flags: the overlay replaces the file's max_users, the flag the overlay's max_steps
    assert (cfg.lora_rank, cfg.retriever, cfg.max_users, cfg.max_steps) == (4, "ease", 16, 3)
