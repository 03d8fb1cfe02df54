"""The greedy search of agent/llm/lookahead.py on a toy language model: a constrained row that walks into a dead end
(every word the model would write next is forbidden) steps back and takes its next best word, instead of ending
garbled; `Sampling.backtracks` bounds it. The rows' caches of both runtimes are checked in tests/llm/test_llamacpp.py
(`rewind`)."""
from __future__ import annotations

import threading

import torch

from agent.llm.generation import Sampling
from agent.llm.lookahead import look_ahead

EOS, A, B, C, D, STOP = range(6)
TEXTS = ["", "a", "b", "c", "d", "."]
# next-token logits by (prompt, written so far); anything else: the row should end
LM = {((7,), ()): {C: 5.0}, ((7,), (C,)): {A: 5.0, D: 3.0}, ((7,), (C, A)): {B: 5.0},
      ((7,), (C, D)): {STOP: 5.0}, ((7,), (C, D, STOP)): {EOS: 5.0},
      ((8,), ()): {A: 5.0}, ((8,), (A,)): {STOP: 5.0}, ((8,), (A, STOP)): {EOS: 5.0},
      # the wrong turn two words before the dead end: "c a d" can only go on with "b"
      ((9,), ()): {C: 5.0}, ((9,), (C,)): {A: 5.0, D: 3.0}, ((9,), (C, A)): {D: 5.0}, ((9,), (C, A, D)): {B: 5.0},
      ((9,), (C, D)): {STOP: 5.0}, ((9,), (C, D, STOP)): {EOS: 5.0}}


def _logits(sequence: list[int]) -> torch.Tensor:
    prompt, written = tuple(sequence[:1]), tuple(sequence[1:])
    out = torch.full((len(TEXTS),), -10.0)
    for token, value in LM.get((prompt, written), {EOS: 5.0}).items():
        out[token] = value
    return out


class ToyRows:
    """A rows object whose cache is the token list itself: a wrong `accept` or `rewind` shows as a wrong prefix."""

    def __init__(self, prompts: list[list[int]]):
        self.cache = [list(p) for p in prompts]
        self.fed: list[list[int]] = []
        self.rewinds = 0

    def feed(self, tokens: list[list[int]]):
        self.fed = tokens
        width = max(len(t) for t in tokens)
        out = torch.full((len(tokens), width, len(TEXTS)), -10.0)
        for j, toks in enumerate(tokens):
            for i in range(len(toks)):
                out[j, i] = _logits(self.cache[j] + toks[:i + 1])
        return out

    def accept(self, kept: list[int]) -> None:
        for j, count in enumerate(kept):
            self.cache[j] += self.fed[j][:count]

    def rewind(self, j: int, count: int) -> None:
        self.rewinds += 1
        del self.cache[j][len(self.cache[j]) - count:]

    def select(self, going: list[int]) -> None:
        self.cache = [self.cache[j] for j in going]


class Tok:
    eos_token_id = EOS

    def decode(self, ids, skip_special_tokens=True):
        return "".join(TEXTS[t] for t in ids)


class NoB:
    """A claim constraint that never allows "b", with the fluency floor of RowConstraints.restrict."""

    texts = TEXTS

    def __init__(self, floor: float):
        self.floor = floor

    def copying_title(self, row, written, token):
        return False

    def restrict(self, scores, row, written, greedy, unbanned=None, total=None):
        cutoff = total + self.floor
        allowed = [t for t in torch.argsort(scores, descending=True).tolist()
                   if t != B and scores[t] > float("-inf") and scores[t] >= cutoff]
        keep = allowed[:1] or [EOS]
        self.dead_end = not allowed
        kept = scores[keep].clone()
        scores.fill_(float("-inf"))
        scores[keep] = kept
        return scores


def _run(backtracks: int):
    prompts = [[7], [8], [9]]
    rows = ToyRows(prompts)
    first = torch.stack([_logits(p) for p in prompts])
    sampling = Sampling(floor=-6.0, backtracks=backtracks)
    done = {g.row: g for g in look_ahead(Tok(), rows, prompts, first, 8, sampling, NoB(-6.0), threading.Event())}
    return done, rows


def test_a_row_at_a_dead_end_steps_back_to_its_next_best_word():
    done, rows = _run(backtracks=8)
    assert done[0].text == "cd." and done[0].finished and done[0].worst_logprob > -6.0
    assert done[1].text == "a." and done[1].worst_logprob > -6.0  # the other row of the batch is untouched
    assert done[2].text == "cd." and done[2].worst_logprob > -6.0  # stepped back twice: "d", then "a"
    assert rows.rewinds == 3


def test_without_steps_back_the_row_is_cut_at_the_dead_end():
    done, rows = _run(backtracks=0)
    assert done[0].text == "ca" and not done[0].finished  # a cut, as at the token budget: no sentence came of it
    assert done[0].worst_logprob > -6.0  # the end forced on it is no word of the row
    assert done[1].text == "a." and done[1].finished and done[2].text == "cad" and rows.rewinds == 0
