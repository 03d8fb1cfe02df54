"""Batched generation that hands each row back the moment it is finished, for a local model with LoRA adapters.

- A prompt's constant head (`agent.llm.prompting.constant_prefix`: system text and instructions) is computed once
  per adapter and reused by every call, so a turn runs only the pick-specific part of each prompt.
- Rows end at the end-of-text token and leave the batch as they finish; `generate_rows` yields `Generated` rows
  in the order they finish (the reply streams explanation by explanation).
- `samples` > 1 draws that many continuations per prompt (temperature / top-p) from ONE prefill of the prompt:
  the cache is repeated after it, which is how the rejection sampling of `marquee finetune --task explain`
  affords several candidates per case.
- `distinct_ngram` bans, for each row, a token that would repeat an n-token sequence another row of the same call
  has written (or one of `avoid`, texts written before the call), so the picks of one reply do not share phrases.
- `constraints` (one `agent.llm.constrained.ClaimConstraint` or None per prompt) mask, at every step, the tokens
  that would write a claim the pick's evidence does not support (claim-constrained decoding).
- Greedy rows look ahead (`Sampling.lookahead`, prompt-lookup decoding) and, constrained, step back from a dead end
  (`Sampling.backtracks`): agent/llm/lookahead.py. That loop drives the rows' cache through a rows object
  (`torch_rows.TorchRows`; `llamacpp.LlamaRows`, where the greedy single-sample rows of the embedded model run on
  llama.cpp as `[llm] runtime` allows, agent/llm/llamacpp.py); a call with more rows or tokens than llama.cpp's
  cache holds runs on torch.

The loop runs in a worker thread that holds the model's lock and selects the adapter for the whole generation
(`LoadedModel.using`), so concurrent callers queue, each with its own adapter; the caller's thread only reads
a queue (Gradio may resume a generator on any thread, and a lock cannot be released by another thread).
"""
from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from agent.llm.loading import LoadedModel
from agent.llm.lookahead import Generated, ban_repeats, look_ahead
from agent.llm.torch_rows import TorchRows
from agent.llm.prompting import encode

_DONE = object()


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    samples: int = 1
    seed: int = 0
    distinct_ngram: int = 0  # > 0: rows may not repeat each other's token n-grams of this length
    avoid: tuple[tuple[int, ...], ...] = ()  # with distinct_ngram: earlier texts' tokens, n-grams banned too
    lookahead: int = 3  # greedy only: prompt tokens proposed per pass (0: one token per forward pass)
    # greedy, with constraints: no token the model gives a log-probability below this is searched for (a row left with
    # none steps back, else is cut there; agent/llm/constrained.py RowConstraints.floor); None searches them all
    floor: float | None = None
    backtracks: int = 0  # greedy, with constraints: steps back from dead ends a row may take (agent/llm/lookahead.py)


GREEDY = Sampling()


class PrefixCache:
    """The key/value states of constant prompt heads, per (model, adapter, text); built on first use. Keyed by the
    model object itself (held weakly): two models in one process (a bf16 and an fp32 copy, or a base model later
    wrapped with LoRA adapters) never share states."""

    def __init__(self) -> None:
        self._states: dict[tuple[int, str | None, str], tuple[weakref.ref, list[int], tuple]] = {}
        self._lock = threading.Lock()

    def get(self, llm: LoadedModel, adapter: str | None, text: str):
        """(token ids, per-layer (key, value)) of `text`; call with the model's lock held and `adapter` active."""
        import torch

        model = llm.model
        key = (id(model), adapter, text)
        with self._lock:
            hit = self._states.get(key)
            if hit is not None and hit[0]() is model:  # the same object, not a new one at a reused address
                return hit[1], hit[2]
        ids = encode(llm.tokenizer, text)
        with torch.inference_mode():
            out = model(input_ids=torch.tensor([ids], device=llm.device), use_cache=True)
        states = tuple((layer.keys, layer.values) for layer in out.past_key_values.layers)
        with self._lock:
            self._states[key] = (weakref.ref(model), ids, states)
        return ids, states

    def clear(self) -> None:
        with self._lock:
            self._states.clear()


PREFIXES = PrefixCache()


def generate_rows(llm: LoadedModel, texts: Sequence[str], max_new_tokens: int, prefix: str = "",
                  sampling: Sampling = GREEDY, adapter: str | None = None,
                  cache: PrefixCache = PREFIXES, constraints: Sequence | None = None) -> Iterator[Generated]:
    """Continue every text (each starting with `prefix`, which may be ""); yields rows as they finish.
    `adapter`: the LoRA adapter to generate with (None: the model's own default; see LoadedModel.using).
    `constraints`: per text, a ClaimConstraint its continuation must satisfy, or None (agent/llm/constrained.py)."""
    if constraints is not None and len(constraints) != len(texts):
        raise ValueError(f"{len(constraints)} constraints for {len(texts)} texts: give one (or None) per text")
    if not texts:
        return
    results: queue.Queue = queue.Queue()
    stop = threading.Event()

    def work() -> None:
        try:
            with llm.using(adapter):
                for item in _generate(llm, list(texts), max_new_tokens, prefix, sampling, adapter, cache, stop,
                                      constraints):
                    results.put(item)
        except BaseException as exc:  # surfaced in the caller's thread
            results.put(exc)
        finally:
            results.put(_DONE)

    worker = threading.Thread(target=work, name="llm-generate", daemon=True)
    worker.start()
    try:
        while True:
            item = results.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()  # an abandoned generator stops the loop at its next step
        worker.join()


def _generate(llm: LoadedModel, texts: list[str], max_new_tokens: int, prefix: str, sampling: Sampling,
              adapter: str | None, cache: PrefixCache, stop: threading.Event,
              constraints: Sequence | None = None) -> Iterator[Generated]:
    import torch
    from transformers import DynamicCache

    tok = llm.tokenizer
    device = llm.device
    split = bool(prefix) and all(t.startswith(prefix) for t in texts) and _splits_cleanly(tok, prefix, texts[0])
    tails = [encode(tok, t[len(prefix):] if split else t) for t in texts]
    if sampling.temperature <= 0 and sampling.samples <= 1 and sampling.lookahead > 0:
        from agent.llm.llamacpp import engine_for

        engine = engine_for(llm)
        head = encode(tok, prefix) if engine is not None and split else []
        if engine is not None and engine.fits(len(head), [len(t) + max_new_tokens + sampling.lookahead for t in tails]):
            yield from _on_llama_cpp(engine, llm, head, tails, max_new_tokens, sampling, adapter, stop, constraints)
            return
    head, states = cache.get(llm, adapter, prefix) if split else ([], ())
    n, width, start = len(texts), max(len(t) for t in tails), len(head)
    pad = tok.pad_token_id
    ids = torch.full((n, width), pad, dtype=torch.long)
    mask = torch.zeros((n, start + width), dtype=torch.long)
    mask[:, :start] = 1
    positions = torch.zeros((n, width), dtype=torch.long)
    for r, toks in enumerate(tails):
        ids[r, width - len(toks):] = torch.tensor(toks)
        mask[r, start + width - len(toks):] = 1
        positions[r, width - len(toks):] = torch.arange(start, start + len(toks))
    past = DynamicCache([(k.expand(n, -1, -1, -1).contiguous(), v.expand(n, -1, -1, -1).contiguous())
                         for k, v in states]) if states else DynamicCache()
    generator = torch.Generator().manual_seed(sampling.seed)
    eos = tok.eos_token_id
    with torch.inference_mode():
        out = llm.model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                        cache=past, use_cache=True, logits_to_keep=1)
        past, logits = out.past_key_values, out.logits[:, -1].float()
        next_pos = torch.tensor([start + len(t) for t in tails])
        k = max(1, sampling.samples)
        if k > 1:
            past.batch_repeat_interleave(k)
            logits, mask, next_pos = (x.repeat_interleave(k, 0) for x in (logits, mask, next_pos))
        rows = [(r, s) for r in range(n) for s in range(k)]
        written: list[list[int]] = [[] for _ in rows]
        active = list(range(len(rows)))
        restrict = copying = None
        stuck = [False for _ in rows]  # the row's constraint left it nothing to write this step: a cut, no end
        limits = _row_constraints(tok, constraints, sampling)
        if limits is not None:
            spelled = ["" for _ in rows]

            def restrict(j: int, logits_row, unbanned=None):
                row = active[j]
                out = limits.restrict(logits_row, rows[row][0], spelled[row], sampling.temperature <= 0, unbanned)
                stuck[row] = limits.dead_end
                return out

            def copying(row: int, token: int) -> bool:  # the distinct-n-gram ban spares a title being copied
                return limits.copying_title(rows[row][0], spelled[row], token)
        if sampling.temperature <= 0 and k == 1 and sampling.lookahead > 0:
            yield from look_ahead(tok, TorchRows(llm, past, mask, next_pos), tails, logits, max_new_tokens,
                                   sampling, limits, stop)
            return
        worst = [0.0 for _ in rows]
        for step in range(max_new_tokens):
            if stop.is_set():
                return
            own = torch.log_softmax(logits, dim=-1)  # before the bans and masks below change `logits`
            if sampling.distinct_ngram:
                chosen = _choose_distinct(logits, active, written, sampling, generator, restrict, copying)
            else:
                if restrict is not None:
                    for j in range(len(active)):
                        restrict(j, logits[j])
                chosen = _choose(logits, sampling, generator)
            keep, finished = [], []
            for j, row in enumerate(active):
                token = int(chosen[j])
                if not (token == eos and stuck[row]):  # an end forced on the row is no word of it (lookahead.py)
                    worst[row] = min(worst[row], float(own[j, token]))
                if token == eos:
                    finished.append(row)
                else:
                    written[row].append(token)
                    if restrict is not None:
                        spelled[row] += limits.texts[token]
                    keep.append(j)
            last = step == max_new_tokens - 1
            for row in finished + ([active[j] for j in keep] if last else []):
                r, s = rows[row]
                yield Generated(r, s, tok.decode(written[row], skip_special_tokens=True).strip(),
                                finished=row in finished and not stuck[row], tokens=len(written[row]),
                                worst_logprob=worst[row])
            if last or not keep:
                return
            if len(keep) < len(active):
                index = torch.tensor(keep)
                past.batch_select_indices(index.to(device))
                mask, next_pos, chosen = mask[index], next_pos[index], chosen[index]
                active = [active[j] for j in keep]
            mask = torch.cat([mask, torch.ones((len(active), 1), dtype=torch.long)], dim=1)
            out = llm.model(input_ids=chosen[:, None].to(device), attention_mask=mask.to(device),
                            position_ids=next_pos[:, None].to(device), cache=past, use_cache=True)
            past, logits = out.past_key_values, out.logits[:, -1].float()
            next_pos = next_pos + 1


def _row_constraints(tok, constraints: Sequence | None, sampling: Sampling):
    if constraints is None or all(c is None for c in constraints):
        return None
    from agent.llm.constrained import RowConstraints

    return RowConstraints(tok, constraints, tok.eos_token_id, floor=sampling.floor)


def _on_llama_cpp(engine, llm: LoadedModel, head: list[int], tails: list[list[int]], max_new_tokens: int,
                  sampling: Sampling, adapter: str | None, stop: threading.Event,
                  constraints: Sequence | None) -> Iterator[Generated]:
    """Greedy generation on llama.cpp (agent/llm/llamacpp.py): the same loop, the rows in its cache."""
    import torch

    from agent.llm.llamacpp import LlamaRows

    tok = llm.tokenizer
    engine.use(llm.adapter_folder(adapter))
    logits = torch.from_numpy(engine.start_rows(engine.head(head), len(head), tails))
    rows = LlamaRows(engine, [len(head) + len(t) for t in tails])
    try:
        limits = _row_constraints(tok, constraints, sampling)
        yield from look_ahead(tok, rows, tails, logits, max_new_tokens, sampling, limits, stop)
    finally:
        rows.close()


def _splits_cleanly(tokenizer, prefix: str, text: str) -> bool:
    """Whether the prefix's tokens followed by the rest's are the tokens of the whole text (a prefix cut inside
    what the tokenizer would merge would change the prompt the model sees)."""
    return encode(tokenizer, prefix) + encode(tokenizer, text[len(prefix):]) == encode(tokenizer, text)


def _choose(logits, sampling: Sampling, generator):
    import torch

    if sampling.temperature <= 0:
        return logits.argmax(-1).cpu()
    probs = torch.softmax(logits / sampling.temperature, dim=-1).cpu()
    if sampling.top_p < 1.0:
        ordered, index = probs.sort(dim=-1, descending=True)
        outside = ordered.cumsum(-1) - ordered > sampling.top_p  # keep the smallest set reaching top_p
        ordered[outside] = 0.0
        probs = torch.zeros_like(probs).scatter(-1, index, ordered)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def _choose_distinct(logits, active: list[int], written: list[list[int]], sampling: Sampling, generator,
                     restrict=None, exempt=None):
    """Row by row: a row may not take the token that completes an n-gram another row has written, counting the
    tokens the rows before it took at this very step (rows that write in lockstep would otherwise never clash).
    `restrict(j, logits_row)`: the claim constraint of row j, applied after those bans."""
    import torch

    n = sampling.distinct_ngram
    draft = [list(toks) for toks in written]
    chosen = []
    for j, row in enumerate(active):
        unbanned = logits[j].clone() if restrict is not None else None
        ban_repeats(logits[j], row, draft, n, sampling.avoid, exempt and (lambda t, row=row: exempt(row, t)))
        if restrict is not None:
            restrict(j, logits[j], unbanned)
        token = int(_choose(logits[j:j + 1], sampling, generator)[0])
        chosen.append(token)
        draft[row] = draft[row] + [token]
    return torch.tensor(chosen)
