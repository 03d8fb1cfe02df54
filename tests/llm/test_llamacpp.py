"""Greedy generation on llama.cpp (agent/llm/llamacpp.py) against the torch model it stands in for: the same weights
(BF16 from the embedded GGUF, the explainer's LoRA converted), the same loop (lookahead.look_ahead), rows that
leave the cache when they end or are abandoned, and the runtime setting's errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from agent.llm.generation import Sampling, generate_rows
from agent.llm.llamacpp import ROW_SEQUENCES, LlamaRows, engine_for
from agent.llm.loading import attach_adapter, default_adapter_dir, load_model_uncached
from agent.llm.prompting import constant_prefix, encode, render_chat
from agent.llm.torch_rows import TorchRows



@pytest.fixture(scope="module")
def pair(shared_home):
    """The embedded model twice, bf16 on torch and on llama.cpp, each with the shipped explainer adapter."""
    models = {}
    for runtime in ("torch", "llama.cpp"):
        llm = load_model_uncached(home=shared_home, adapter="none", dtype="bfloat16", runtime=runtime)
        attach_adapter(llm, "explain", default_adapter_dir("explain"))
        models[runtime] = llm
    return models


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float((a.argmax(-1) == b.argmax(-1)).mean())


def test_llama_cpp_computes_the_torch_models_next_tokens_with_and_without_the_adapter(fields, pair):
    llm = pair["torch"]
    engine = engine_for(pair["llama.cpp"])
    ids = encode(llm.tokenizer, render_chat(llm.tokenizer, "explain", **fields[0]))
    logits = {}
    for adapter in ("", "explain"):
        with llm.using(adapter) as model, torch.inference_mode():
            expected = model(input_ids=torch.tensor([ids])).logits[0].float().numpy()
        engine.use(pair["llama.cpp"].adapter_folder(adapter))
        engine.forget(0)
        got = engine.decode([(t, p, 0, True) for p, t in enumerate(ids)])
        engine.forget(0)
        assert _agreement(got, expected) >= 0.9, adapter  # bf16 on both sides, different kernels
        logits[adapter] = got
    assert _agreement(logits[""], logits["explain"]) < 0.97  # the adapter is applied, not dropped


def test_greedy_rows_on_llama_cpp_follow_torch_and_leave_the_cache(fields, pair):
    tok = pair["torch"].tokenizer
    texts = [render_chat(tok, "explain", **f) for f in fields]
    prefix = constant_prefix(tok, "explain")
    runs = {rt: {g.row: g for g in generate_rows(llm, texts, 24, prefix=prefix, adapter="explain")}
            for rt, llm in pair.items()}
    for row in range(len(texts)):
        a, b = runs["torch"][row].text.split(), runs["llama.cpp"][row].text.split()
        assert a[:4] == b[:4], (a, b)  # a near tie may part them later
    engine = engine_for(pair["llama.cpp"])
    assert all(engine.positions(seq) == 0 for seq in range(ROW_SEQUENCES))


def _one_row(llm, runtime: str, prompt: list[int]):
    if runtime == "llama.cpp":
        engine = engine_for(llm)
        engine.use(llm.adapter_folder(""))
        engine.start_rows(None, 0, [prompt])
        return LlamaRows(engine, [len(prompt)])
    out = llm.model(input_ids=torch.tensor([prompt]), use_cache=True)
    return TorchRows(llm, out.past_key_values, torch.ones((1, len(prompt)), dtype=torch.long),
                     torch.tensor([len(prompt)]))


@pytest.mark.parametrize("runtime", ["torch", "llama.cpp"])
def test_a_row_that_steps_back_sees_again_what_it_saw_there(fields, pair, runtime):
    """`rewind` (lookahead.py's step back from a dead end) leaves the row's cache as it was before the dropped
    tokens: the token fed again at its old position gets the logits it got the first time."""
    llm = pair[runtime]
    ids = encode(llm.tokenizer, render_chat(llm.tokenizer, "explain", **fields[0]))
    prompt, (t1, t2, t3) = ids[:-3], ids[-3:]
    with llm.using(""), torch.inference_mode():
        rows = _one_row(llm, runtime, prompt)
        before = rows.feed([[t1, t2]])
        rows.accept([2])
        rows.feed([[t3]])
        rows.accept([1])
        rows.rewind(0, 2)  # back to the prompt and t1
        again = rows.feed([[t2]])
        rows.accept([0])  # kept none of it
        elsewhere = rows.feed([[t3]])  # t3 at t2's position: different logits, so the check can fail
    if runtime == "llama.cpp":
        rows.close()
    assert torch.equal(again[0, 0].topk(5).indices, before[0, 1].topk(5).indices)
    assert float((again[0, 0] - before[0, 1]).abs().max()) < 0.5
    assert float((elsewhere[0, 0] - before[0, 1]).abs().max()) > 1.0


def test_an_abandoned_generation_frees_its_rows(fields, pair):
    llm = pair["llama.cpp"]
    tok = llm.tokenizer
    texts = [render_chat(tok, "explain", **f) for f in fields] * 3
    rows = generate_rows(llm, texts, 48, prefix=constant_prefix(tok, "explain"), adapter="explain")
    next(rows)
    rows.close()
    engine = engine_for(llm)
    assert all(engine.positions(seq) == 0 for seq in range(ROW_SEQUENCES))


def test_constrained_rows_on_llama_cpp_keep_to_their_evidence(fields, pair, checker, fargo_case):
    from agent.llm.constrained import ClaimConstraint

    llm = pair["llama.cpp"]
    tok = llm.tokenizer
    constraint = ClaimConstraint.for_pick(checker, *fargo_case)
    texts = [render_chat(tok, "explain", **fields[0])]
    [row] = generate_rows(llm, texts, 48, prefix=constant_prefix(tok, "explain"), adapter="explain",
                          constraints=[constraint], sampling=Sampling(floor=-6.0))
    assert row.text and (not row.finished or constraint.may_end(row.text)), row  # a dead end is a cut, no end


def test_the_runtime_setting_says_what_to_change(shared_home):
    llm = load_model_uncached(home=shared_home, adapter="none", dtype="float32", runtime="auto")
    assert engine_for(llm) is None  # auto: llama.cpp serves the bf16 weights only
    llm.runtime, llm.name = "llama.cpp", "some/other-model"
    with pytest.raises(ValueError, match="runtime = 'torch'"):
        engine_for(llm)
    llm.runtime = "fast"
    with pytest.raises(ValueError, match="known: auto, torch, llama.cpp"):
        engine_for(llm)


def test_more_rows_than_the_cache_holds_run_on_torch(fields, pair):
    llm = pair["llama.cpp"]
    engine = engine_for(llm)
    texts = [render_chat(llm.tokenizer, "explain", **fields[0])] * (ROW_SEQUENCES + 1)
    assert not engine.fits(10, [100] * len(texts)) and engine.fits(10, [100] * ROW_SEQUENCES)
    rows = list(generate_rows(llm, texts, 2, prefix=constant_prefix(llm.tokenizer, "explain"), adapter="explain"))
    assert sorted(g.row for g in rows) == list(range(len(texts)))
