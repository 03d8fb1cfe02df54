"""Distillation data: the teacher's temperature chosen on validation, cross-fitted teachers that never saw the
users they score, the teacher's own score for an inserted target, and the validation's margin-gate choice."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from agent.llm.fusion import Fusion
from finetune.data.instructions import build_instances, cross_fitted_instances, fit_retriever, user_folds
from finetune.training.distillation import choose_temperature, target_nll
from finetune.training.validation import ValidationResult, gate_threshold


def test_the_chosen_temperature_is_the_one_that_generated_the_targets():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(4000, 20)) * 2.0
    true_t = 0.5
    p = np.exp(scores / true_t)
    p /= p.sum(1, keepdims=True)
    targets_pos = np.array([rng.choice(20, p=row) for row in p])
    candidates = np.tile(np.arange(20), (4000, 1))
    vset = SimpleNamespace(retriever_scores=scores, candidates=candidates, targets=targets_pos)
    best, nll = choose_temperature(vset)
    assert best == true_t and nll[0.5] < nll[0.2] and nll[0.5] < nll[1.0]
    # rows whose candidates miss the target do not count; none at all → NaN, and T falls back to 1
    assert np.isnan(target_nll(scores, candidates, np.full(4000, 99), 1.0))
    assert choose_temperature(SimpleNamespace(retriever_scores=scores, candidates=candidates,
                                              targets=np.full(4000, 99)))[0] == 1.0


def test_cross_fitted_teachers_never_see_the_users_they_score(ml100k, ml100k_split, tmp_path):
    users = np.arange(40)
    seen = []

    def fit(sub):
        seen.append(set(np.unique(sub.train.users).tolist()))
        return fit_retriever("mostpop", sub, ml100k, tmp_path)

    instances = cross_fitted_instances(ml100k_split, fit, 2, targets_per_user=3, users=users, seed=0, log=lambda m: None)
    folds = user_folds(users, 2, 0)
    assert len(seen) == 2 and sorted(np.concatenate(folds).tolist()) == users.tolist()
    for fold, fitted_on in zip(folds, seen):
        assert not fitted_on & set(fold.tolist())  # the teacher of this fold never saw its users
    by_user = {i.user for i in instances}
    assert by_user == set(users.tolist()) and len(instances) == 40 * 3
    for inst in instances:
        assert inst.history == ml100k_split.train_sequences[inst.user][:len(inst.history)]
        assert len(inst.retriever_scores) == 20 and inst.target in inst.candidates


def test_an_inserted_target_keeps_a_teacher_score_below_the_listed_ones(ml100k, ml100k_split, tmp_path):
    ease = fit_retriever("ease", ml100k_split, ml100k, tmp_path)
    instances = build_instances(ml100k_split, ease, 3, candidates=20, users=np.arange(60))
    missed = [i for i in instances if not i.retriever_hit]
    assert missed
    for inst in missed:
        scores = inst.retriever_scores
        assert inst.candidates[-1] == inst.target and scores[-1] <= scores[-2]
        assert list(scores[:-1]) == sorted(scores[:-1], reverse=True)


def test_the_gate_is_chosen_only_when_it_beats_no_gate():
    plain = {0.0: 0.10, 0.2: 0.11}
    result = ValidationResult(retriever=0.10, llm_only=0.05, by_weight=plain, by_weight_other=plain, calibrate=False,
                              seconds=0.0, fusion="residual", by_gate={0.5: (1.2, {0.0: 0.10, 0.2: 0.112}),
                                                                       0.25: (0.8, {0.0: 0.10, 0.2: 0.105})})
    assert result.gated == (0.5, 1.2, 0.2, 0.112)
    assert result.fusion_choice() == Fusion("residual", 0.2, gate_margin=1.2)
    worse = ValidationResult(retriever=0.10, llm_only=0.05, by_weight=plain, by_weight_other=plain, calibrate=False,
                             seconds=0.0, fusion="residual", by_gate={0.5: (1.2, {0.0: 0.10, 0.2: 0.11})})
    assert worse.gated is None and worse.fusion_choice() == Fusion("residual", 0.2)
    margins = np.arange(100, dtype=float)
    assert gate_threshold(margins, 1.0) is None
    assert (margins < gate_threshold(margins, 0.25)).mean() == pytest.approx(0.25, abs=0.01)
