"""Greedy decoding with prompt-lookup proposals and backtracking, the loop agent/llm/generation.py runs on either
runtime's cache through a rows object (`torch_rows.TorchRows`, `llamacpp.LlamaRows`).

- Look-ahead (prompt-lookup decoding): the tokens that followed a row's last words in its own prompt are proposed
  and checked in one forward pass, and every proposed token the row would have chosen anyway (the same masks and
  bans apply) is kept, so one pass writes several tokens of a copied title or fact. The text is what one token per
  pass would write.
- Backtracking: a claim-constrained row can reach a dead end, where every word the model would write is one its
  evidence does not support and the sentence may not end there either (`constrained.RowConstraints.restrict` finds
  nothing above the fluency floor and forces the end: `dead_end`); that draft is rejected (garbled, or by the
  checker: agent/llm/explainer.py). Instead the row steps back: it forgets its last token and takes its next best
  one there, stepping back again when none is left there either (a dead end again). The longer a row stays stuck
  the further back it steps (its n-th step back drops 1 + n // 2 tokens: one wrong word is often a few tokens
  before the dead end), at most `Sampling.backtracks` times; then it is cut there (`finished` False, as at the token
  budget): a whole first sentence before the dead end can still be shown. A step back costs the row one pass, run
  in the batch beside the other rows' passes. benchmarks/explain.py measures the served explainer against itself
  without steps back (benchmarks/RESULTS.md).

A rows object holds the rows' cache: it is fed each active row's last token and proposals (`feed`: logits per fed
position), told how many each kept (`accept`), how many positions a row steps back (`rewind`), and which rows go on
(`select`).
"""
from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Generated:
    row: int  # index of the prompt
    sample: int  # 0..samples-1
    text: str
    finished: bool  # ended by the model (False: cut by max_new_tokens, or at a dead end with no step back left)
    tokens: int
    # the lowest log-probability the model itself (before any mask or ban) gave a token the row wrote: very low when
    # a constraint forced a word the model did not mean, which is where constrained sentences come out garbled
    worst_logprob: float = 0.0


def look_ahead(tok, rows, tails: list[list[int]], logits, max_new_tokens: int, sampling, limits,
               stop: threading.Event) -> Iterator[Generated]:
    """Greedy generation of every row (see the module docstring); yields `generation.Generated` rows as they finish.
    `logits`: the prefill's last logits per row (their positions are in the cache already); `sampling`: a
    `generation.Sampling`; `limits`: the rows' `constrained.RowConstraints` or None."""
    eos = tok.eos_token_id
    written: list[list[int]] = [[] for _ in tails]
    spelled = ["" for _ in tails]
    own: list[list[float]] = [[] for _ in tails]  # the model's own log-probability of each written token
    ruled_out: list[dict[int, set[int]]] = [{} for _ in tails]  # per row: position -> tokens a step back dropped
    steps_back = [0 for _ in tails]
    active = list(range(len(tails)))
    fed: list[list[int]] = [[] for _ in tails]  # per active row: the proposals of the last pass
    logits = logits[:, None]  # (rows, positions, vocabulary)
    first = True
    while True:
        if stop.is_set():
            return
        draft = [list(w) for w in written]  # a reply's bans see what earlier rows took in this pass
        kept, going, rewinds = [], [], []
        for j, row in enumerate(active):
            taken, scores, stuck = _verify(logits[j], fed[j], row, draft, written, spelled, ruled_out[row], limits,
                                           sampling, max_new_tokens, eos)
            ended = taken[-1] == eos
            own[row].extend(scores[:-1] if ended else scores)
            kept.append(len(taken))  # the pass's input token and the proposals the row took
            if stuck and steps_back[row] < sampling.backtracks and len(written[row]) >= 2:
                rewinds.append((j, _step_back(row, 1 + steps_back[row] // 2, written, spelled, own, ruled_out, limits)))
                steps_back[row] += 1
                going.append(j)
            elif ended or len(written[row]) >= max_new_tokens:
                # a dead end with no step back left is a cut, not an end: the sentences before it stand on their own
                # (agent/llm/explainer.py `finish_text` drops the unfinished one)
                finished = ended and not stuck
                worst = min(own[row] + ([scores[-1]] if finished else []), default=0.0)  # the end counts as a word
                yield Generated(row, 0, tok.decode(written[row], skip_special_tokens=True).strip(), finished=finished,
                                tokens=len(written[row]), worst_logprob=worst)
            else:
                going.append(j)
        if not first:
            rows.accept(kept)
        for j, count in rewinds:
            rows.rewind(j, count)
        first = False
        if not going:
            return
        if len(going) < len(active):
            rows.select(going)
            active = [active[j] for j in going]
        fed = [_proposal(tails[row], written[row], min(sampling.lookahead, max_new_tokens - len(written[row]) - 1))
               for row in active]
        logits = rows.feed([[written[row][-1], *fed[j]] for j, row in enumerate(active)])


def _step_back(row: int, depth: int, written: list[list[int]], spelled: list[str], own: list[list[float]],
               ruled_out: list[dict[int, set[int]]], limits) -> int:
    """Drop the row's last `depth` tokens (the first of them ruled out at its position from now on; the first token
    stays) and return how many cache positions the row gives back: its cache holds every written token, and the
    token before the dropped ones is fed again for the logits to choose anew from."""
    held = len(written[row])
    at = max(1, held - depth)
    ruled_out[row] = {p: tokens for p, tokens in ruled_out[row].items() if p <= at}
    ruled_out[row].setdefault(at, set()).add(written[row][at])
    del written[row][at:]
    del own[row][at:]
    spelled[row] = "".join(limits.texts[t] for t in written[row])
    return held - at + 1


def _proposal(source: list[int], written: list[int], size: int, longest: int = 3) -> list[int]:
    """The `size` tokens that followed the last occurrence in `source` of the row's last 3 (else 2) tokens."""
    for n in range(min(longest, len(written)), 1, -1):
        tail = written[-n:]
        for at in range(len(source) - n - 1, -1, -1):
            if source[at:at + n] == tail:
                return source[at + n:at + n + size]
    return []


def _verify(logits, proposals: list[int], row: int, draft: list[list[int]], written: list[list[int]],
            spelled: list[str], ruled_out: dict[int, set[int]], limits, sampling, max_new_tokens: int,
            eos: int) -> tuple[list[int], list[float], bool]:
    """The tokens row `row` takes from one pass: at each position its best token under the reply's bans, the tokens
    ruled out there by a step back and its claim constraint, going on while that is the proposal fed at the next
    position; the model's own log-probability of each (before any ban or mask); and whether it ends at a dead end
    (its constraint left it nothing to write)."""
    import torch

    taken: list[int] = []
    own: list[float] = []
    stuck = False
    for i in range(len(proposals) + 1):
        total = float(torch.logsumexp(logits[i], -1))  # the model's own normaliser: its log-probabilities, the floor
        scores = logits[i].clone()
        unbanned = scores.clone() if limits is not None else None
        for token in ruled_out.get(len(written[row]), ()):
            scores[token] = float("-inf")
            if unbanned is not None:
                unbanned[token] = float("-inf")
        if sampling.distinct_ngram:
            exempt = None if limits is None else (lambda t: limits.copying_title(row, spelled[row], t))
            ban_repeats(scores, row, draft, sampling.distinct_ngram, sampling.avoid, exempt)
        if limits is not None:
            limits.restrict(scores, row, spelled[row], True, unbanned, total=total)
            stuck = limits.dead_end
        token = int(scores.argmax())
        taken.append(token)
        own.append(float(logits[i, token]) - total)
        if token == eos:
            break
        written[row].append(token)
        draft[row].append(token)
        if limits is not None:
            spelled[row] += limits.texts[token]
        if len(written[row]) >= max_new_tokens or i == len(proposals) or token != proposals[i]:
            break
    return taken, own, stuck and taken[-1] == eos


def ban_repeats(logits_row, row: int, draft: list[list[int]], n: int, avoid: Sequence[Sequence[int]] = (),
                exempt=None) -> None:
    """Ban, for `row`, the token that would complete an n-gram another row (or a text of `avoid`) has written;
    `exempt(token)`: True for a token that goes on copying a title (a name repeated is no phrase repeated)."""
    toks = draft[row]
    if len(toks) < n - 1:
        return
    context = tuple(toks[-(n - 1):])
    for other, others in enumerate([*draft, *avoid]):
        if other == row:
            continue
        for i in range(len(others) - n + 1):
            if tuple(others[i:i + n - 1]) == context and not (exempt and exempt(others[i + n - 1])):
                logits_row[others[i + n - 1]] = float("-inf")
