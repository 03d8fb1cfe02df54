"""The frozen-layer cache on disk: exact round trip, resumable building, a fresh cache when the inputs change."""
from __future__ import annotations

import numpy as np
import torch

from finetune.training import frozen_cache
from finetune.training.frozen_cache import DiskCache, build_cache, fingerprint

HIDDEN = 6


class P:
    def __init__(self, i):
        self.input_ids = tuple(range(i, i + 3 + i % 4))
        self.segment_ids = (-1,) * len(self.input_ids)
        self.position_ids = tuple(range(len(self.input_ids)))
        self.score_at = (len(self.input_ids) - 1,)

    def __len__(self):
        return len(self.input_ids)


def fake_bottom(calls):
    def bottom(model, batch, stop):  # states that identify the token: id + 0.5·position, bf16-exact
        calls.append(batch["input_ids"].shape[0])
        ids = batch["input_ids"].float()
        return (ids[..., None] + 0.5 * torch.arange(HIDDEN)).to(torch.bfloat16)
    return bottom


def test_round_trip_resume_and_reset(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(frozen_cache, "bottom_hidden", fake_bottom(calls))
    monkeypatch.setattr(frozen_cache, "collate", lambda ps, pad, dev: {
        "input_ids": torch.nn.utils.rnn.pad_sequence([torch.tensor(p.input_ids) for p in ps], batch_first=True)})
    data = [P(i) for i in range(10)]
    key = fingerprint(data, "m", 2, torch.bfloat16)
    store = DiskCache(tmp_path, key, [len(p) for p in data], HIDDEN, torch.bfloat16)
    # write only the first 4 (as if the run stopped there), then resume in a new object over the same folder
    for at in range(0, 4, 2):
        rows = [int(i) for i in store.order[at:at + 2]]
        for i in rows:
            ids = torch.tensor(data[i].input_ids).float()
            store.put(i, (ids[:, None] + 0.5 * torch.arange(HIDDEN)).to(torch.bfloat16))
        store.commit(at + 2)
    resumed = DiskCache(tmp_path, key, [len(p) for p in data], HIDDEN, torch.bfloat16)
    assert resumed.done == 4 and not resumed.complete
    build_cache(None, data, 0, 2, "cpu", batch_size=2, store=resumed, commit_every=1)
    assert sum(calls) == 6 and resumed.complete  # only the 6 missing examples were computed
    again = DiskCache(tmp_path, key, [len(p) for p in data], HIDDEN, torch.bfloat16)
    for i, p in enumerate(data):
        got = again[i]
        expected = (torch.tensor(p.input_ids).float()[:, None] + 0.5 * torch.arange(HIDDEN)).to(torch.bfloat16)
        assert got.dtype == torch.bfloat16 and torch.equal(got, expected)
    changed = fingerprint(data[:-1] + [P(42)], "m", 2, torch.bfloat16)
    assert changed != key
    fresh = DiskCache(tmp_path, changed, [len(p) for p in data[:-1] + [P(42)]], HIDDEN, torch.bfloat16)
    assert fresh.done == 0
    assert np.asarray(fresh.data).sum() == 0
