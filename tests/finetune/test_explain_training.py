"""The explainer's LM trainer refuses a training set that cannot make one step (it used to loop for ever)."""
from __future__ import annotations

import pytest

from finetune.training.lm import train_lm
from finetune.training.tasks import TASKS, UnknownTaskError, create_task


@pytest.mark.parametrize("sentences", [0, 1])
def test_fewer_sentences_than_one_batch_is_a_clear_error(tmp_path, sentences):
    with pytest.raises(ValueError, match="fewer than one batch of 2: nothing to train on"):
        train_lm(None, None, [object()] * sentences, [], tmp_path, epochs=1.0, learning_rate=1e-4, batch_size=2,
                 lora_layers=1)


def test_tasks_are_found_by_name_and_an_unknown_one_lists_them():
    assert set(TASKS) == {"rerank", "explain"}
    assert create_task("explain").slot == "explain" and create_task("rerank").slot == "default"
    with pytest.raises(UnknownTaskError, match="known tasks: explain, rerank"):
        create_task("summarise")
