"""The distillation loss of the order-free scorers: KL(softmax(teacher/T) ‖ softmax(student)) + λ·CE."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from agent.llm.scorers import scorer_class


def batch(logits_rows, teacher_rows, positions, lengths):
    n = max(lengths)
    mask = torch.zeros((len(lengths), n), dtype=torch.bool)
    for r, k in enumerate(lengths):
        mask[r, :k] = True
    return {"teacher": torch.tensor(teacher_rows, dtype=torch.float32), "position": torch.tensor(positions),
            "score_mask": mask}


def reference(logits, teacher, position, k, temperature, ce_weight):
    s, t = np.asarray(logits[:k], float), np.asarray(teacher[:k], float) / temperature
    p = np.exp(t - t.max()) / np.exp(t - t.max()).sum()
    log_q = s - s.max() - np.log(np.exp(s - s.max()).sum())
    return float((p * (np.log(p) - log_q)).sum() - ce_weight * log_q[position])


@pytest.mark.parametrize("name", ["segments", "head"])
def test_loss_matches_the_formula_on_padded_lists(name):
    scorer = scorer_class(name)(None, distill=(0.5, 0.2))
    logits = [[1.0, 0.5, -0.2, 0.3], [0.1, 2.0, 0.0, 0.0]]
    teacher = [[2.0, 1.5, 1.0, 0.4], [1.0, 0.3, 0.2, 0.0]]
    b = batch(logits, teacher, [2, 0], [4, 3])  # the second list has 3 candidates (one padded slot)
    x = torch.tensor(logits, requires_grad=True)
    loss, accuracy = scorer.candidate_loss(x, b)
    expected = np.mean([reference(logits[0], teacher[0], 2, 4, 0.5, 0.2), reference(logits[1], teacher[1], 0, 3, 0.5, 0.2)])
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert x.grad[1, 3] == 0  # the padded slot gets no gradient
    assert float(accuracy) == 0.0  # neither argmax is the target


def test_student_equal_to_the_tempered_teacher_leaves_only_the_ce_term():
    scorer = scorer_class("segments")(None, distill=(2.0, 0.0))
    teacher = [[3.0, 1.0, 0.0]]
    b = batch(None, teacher, [0], [3])
    loss, _ = scorer.candidate_loss(torch.tensor(teacher) / 2.0, b)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)


def test_ce_only_without_distill_and_order_sensitive_scorers_refuse_it():
    scorer = scorer_class("segments")(None)
    b = batch(None, [[5.0, 0.0]], [1], [2])
    loss, _ = scorer.candidate_loss(torch.tensor([[0.0, 0.0]]), b)
    assert float(loss) == pytest.approx(np.log(2))  # the teacher is ignored: plain CE
    with pytest.raises(ValueError, match="cannot distil"):
        scorer_class("listwise")(None, distill=(1.0, 0.1))
    with pytest.raises(ValueError, match="temperature > 0"):
        scorer_class("segments")(None, distill=(0.0, 0.1))
