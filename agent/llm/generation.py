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
- Greedy rows look ahead (`Sampling.lookahead`, prompt-lookup decoding): the tokens that followed the row's last
  words in its own prompt are proposed and checked in one forward pass, and every proposed token the row would
  have chosen anyway (the same masks and bans apply) is kept, so one pass writes several tokens of a copied title
  or fact. The text is what one token per pass would write; rejected proposals stay in the key/value cache as
  masked-out positions.

Greedy single-sample rows of the embedded model run on llama.cpp where `[llm] runtime` allows it
(agent/llm/llamacpp.py): `_look_ahead` drives either runtime's cache through a rows object
(`torch_rows.TorchRows`, `llamacpp.LlamaRows`); a call with more rows or tokens than its cache holds runs on torch.

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
from agent.llm.torch_rows import TorchRows
from agent.llm.prompting import encode

_DONE = object()


@dataclass(frozen=True)
class Generated:
    row: int  # index of the prompt
    sample: int  # 0..samples-1
    text: str
    finished: bool  # ended by the model (False: cut by max_new_tokens)
    tokens: int
    # the lowest log-probability the model itself (before any mask or ban) gave a token the row wrote: very low when
    # a constraint forced a word the model did not mean, which is where constrained sentences come out garbled
    worst_logprob: float = 0.0


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    samples: int = 1
    seed: int = 0
    distinct_ngram: int = 0  # > 0: rows may not repeat each other's token n-grams of this length
    avoid: tuple[tuple[int, ...], ...] = ()  # with distinct_ngram: earlier texts' tokens, n-grams banned too
    lookahead: int = 3  # greedy only: prompt tokens proposed per pass (0: one token per forward pass)
    # greedy, with constraints: no token the model gives a log-probability below this is searched for (the row ends
    # instead; agent/llm/constrained.py RowConstraints.floor); None searches them all
    floor: float | None = None


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
        limits = _row_constraints(tok, constraints, sampling)
        if limits is not None:
            spelled = ["" for _ in rows]

            def restrict(j: int, logits_row, unbanned=None):
                row = active[j]
                return limits.restrict(logits_row, rows[row][0], spelled[row], sampling.temperature <= 0, unbanned)

            def copying(row: int, token: int) -> bool:  # the distinct-n-gram ban spares a title being copied
                return limits.copying_title(rows[row][0], spelled[row], token)
        if sampling.temperature <= 0 and k == 1 and sampling.lookahead > 0:
            yield from _look_ahead(tok, TorchRows(llm, past, mask, next_pos), tails, logits, max_new_tokens,
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
                                finished=row in finished, tokens=len(written[row]), worst_logprob=worst[row])
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


def _proposal(source: list[int], written: list[int], size: int, longest: int = 3) -> list[int]:
    """The `size` tokens that followed the last occurrence in `source` of the row's last 3 (else 2) tokens."""
    for n in range(min(longest, len(written)), 1, -1):
        tail = written[-n:]
        for at in range(len(source) - n - 1, -1, -1):
            if source[at:at + n] == tail:
                return source[at + n:at + n + size]
    return []


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
        yield from _look_ahead(tok, rows, tails, logits, max_new_tokens, sampling, limits, stop)
    finally:
        rows.close()


def _look_ahead(tok, rows, tails: list[list[int]], logits, max_new_tokens: int, sampling: Sampling, limits,
                stop: threading.Event) -> Iterator[Generated]:
    """Greedy generation with prompt-lookup proposals (see the module docstring). `logits`: the prefill's last
    logits per row; `rows` (`torch_rows.TorchRows`, `llamacpp.LlamaRows`) holds the rows' cache: it is fed each
    active row's last token and proposals, told how many each kept, and which rows go on."""
    import torch

    eos = tok.eos_token_id
    written: list[list[int]] = [[] for _ in tails]
    spelled = ["" for _ in tails]
    worst = [0.0 for _ in tails]
    active = list(range(len(tails)))
    fed: list[list[int]] = [[] for _ in tails]  # per active row: the proposals of the last pass
    logits = logits[:, None]  # (rows, positions, vocabulary)
    first = True  # the prefill's logits: its positions are in the cache already
    while True:
        if stop.is_set():
            return
        draft = [list(w) for w in written]  # a reply's bans see what earlier rows took in this pass
        kept, going = [], []
        for j, row in enumerate(active):
            taken = _verify(logits[j], fed[j], row, draft, written, spelled, limits, sampling, max_new_tokens, eos)
            own = torch.log_softmax(logits[j, :len(taken)], dim=-1)
            worst[row] = min(worst[row], *(float(own[i, t]) for i, t in enumerate(taken)))
            kept.append(len(taken))  # the pass's input token and the proposals the row took
            if taken[-1] == eos or len(written[row]) >= max_new_tokens:
                yield Generated(row, 0, tok.decode(written[row], skip_special_tokens=True).strip(),
                                finished=taken[-1] == eos, tokens=len(written[row]), worst_logprob=worst[row])
            else:
                going.append(j)
        if not first:
            rows.accept(kept)
        first = False
        if not going:
            return
        if len(going) < len(active):
            rows.select(going)
            active = [active[j] for j in going]
        fed = [_proposal(tails[row], written[row], min(sampling.lookahead, max_new_tokens - len(written[row]) - 1))
               for row in active]
        logits = rows.feed([[written[row][-1], *fed[j]] for j, row in enumerate(active)])


def _verify(logits, proposals: list[int], row: int, draft: list[list[int]], written: list[list[int]],
            spelled: list[str], limits, sampling: Sampling, max_new_tokens: int, eos: int) -> list[int]:
    """The tokens row `row` takes from one pass: at each position its best token under the reply's bans and its
    claim constraint, going on while that is the proposal fed at the next position."""
    taken: list[int] = []
    for i in range(len(proposals) + 1):
        scores = logits[i].clone()
        unbanned = scores.clone() if limits is not None else None
        if sampling.distinct_ngram:
            exempt = None if limits is None else (lambda t: limits.copying_title(row, spelled[row], t))
            _ban_repeats(scores, row, draft, sampling.distinct_ngram, sampling.avoid, exempt)
        if limits is not None:
            limits.restrict(scores, row, spelled[row], True, unbanned)
        token = int(scores.argmax())
        taken.append(token)
        if token == eos:
            break
        written[row].append(token)
        draft[row].append(token)
        if limits is not None:
            spelled[row] += limits.texts[token]
        if len(written[row]) >= max_new_tokens or i == len(proposals) or token != proposals[i]:
            break
    return taken


def _ban_repeats(logits_row, row: int, draft: list[list[int]], n: int, avoid: Sequence[Sequence[int]] = (),
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
        _ban_repeats(logits[j], row, draft, n, sampling.avoid, exempt and (lambda t, row=row: exempt(row, t)))
        if restrict is not None:
            restrict(j, logits[j], unbanned)
        token = int(_choose(logits[j:j + 1], sampling, generator)[0])
        chosen.append(token)
        draft[row] = draft[row] + [token]
    return torch.tensor(chosen)
