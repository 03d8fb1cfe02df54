"""The row-streaming generation loop (agent/llm/generation.py) against transformers' own `generate`, and the adapters
of one base model (agent/llm/loading.py `attach_adapter` / `LoadedModel.using`) under concurrent callers."""
from __future__ import annotations

import threading

import pytest
import torch

from agent.llm.generation import PrefixCache, Sampling, generate_rows
from agent.llm.loading import NO_ADAPTER, PRIMARY, attach_adapter, load_model_uncached
from agent.llm.prompting import constant_prefix, encode, render_chat

pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def fp32(shared_home):
    """A float32 copy: greedy choices then do not depend on how a batch is shaped."""
    return load_model_uncached(home=shared_home, adapter="none", dtype="float32")


def _reference(llm, text: str, new: int) -> str:
    ids = torch.tensor([encode(llm.tokenizer, text)])
    with torch.inference_mode():
        out = llm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new,
                                 do_sample=False, pad_token_id=llm.tokenizer.pad_token_id)
    row = out[0, ids.shape[1]:].tolist()
    eos = llm.tokenizer.eos_token_id
    return llm.tokenizer.decode(row[:row.index(eos)] if eos in row else row, skip_special_tokens=True).strip()


def test_greedy_rows_equal_transformers_generate_with_and_without_the_shared_prefix(fields, fp32):
    tok = fp32.tokenizer
    texts = [render_chat(tok, "explain", **f) for f in fields]
    prefix = constant_prefix(tok, "explain")
    assert all(t.startswith(prefix) for t in texts) and prefix.endswith("\n")
    assert encode(tok, prefix) + encode(tok, texts[0][len(prefix):]) == encode(tok, texts[0])
    expected = [_reference(fp32, t, 20) for t in texts]
    for head in (prefix, ""):
        got = {g.row: g.text for g in generate_rows(fp32, texts, 20, prefix=head, cache=PrefixCache())}
        assert [got[0], got[1]] == expected


def test_two_models_never_share_prefix_states(fields, fp32, llm):
    """A float32 and a bfloat16 copy of the model, the same prompt head: each gets its own cached states."""
    shared = PrefixCache()
    texts = [render_chat(llm.tokenizer, "explain", **f) for f in fields]
    prefix = constant_prefix(llm.tokenizer, "explain")
    list(generate_rows(fp32, texts, 8, prefix=prefix, cache=shared))
    after_fp32 = {g.row: g.text for g in generate_rows(llm, texts, 8, prefix=prefix, cache=shared)}
    alone = {g.row: g.text for g in generate_rows(llm, texts, 8, prefix=prefix, cache=PrefixCache())}
    assert after_fp32 == alone


def test_rows_come_back_as_they_finish(fields, fp32):
    tok = fp32.tokenizer
    texts = [render_chat(tok, "explain", **f) for f in fields] * 2
    rows = list(generate_rows(fp32, texts, 48, prefix=constant_prefix(tok, "explain")))
    assert sorted(g.row for g in rows) == [0, 1, 2, 3]
    ended = [g.tokens for g in rows if g.finished]
    assert ended == sorted(ended)  # a row that ends earlier is handed back earlier


def test_samples_share_one_prefill_and_are_reproducible(fields, fp32):
    tok = fp32.tokenizer
    texts = [render_chat(tok, "explain", **f) for f in fields]
    sampling = Sampling(temperature=1.0, top_p=0.95, samples=3, seed=7)
    first = sorted((g.row, g.sample, g.text) for g in generate_rows(fp32, texts, 12, sampling=sampling))
    again = sorted((g.row, g.sample, g.text) for g in generate_rows(fp32, texts, 12, sampling=sampling))
    assert first == again and len(first) == 6
    assert len({text for row, _, text in first if row == 0}) > 1  # three draws, not one repeated


def test_rows_of_one_call_do_not_repeat_each_other(fields, fp32):
    tok = fp32.tokenizer
    text = render_chat(tok, "explain", **fields[0])
    plain = [g.text for g in generate_rows(fp32, [text, text], 24)]
    assert plain[0] == plain[1]  # the same prompt twice: the same greedy sentence
    rows = {}
    for g in generate_rows(fp32, [text, text], 24, sampling=Sampling(distinct_ngram=4)):
        rows[g.row] = encode(tok, g.text)
    grams = [{tuple(ids[i:i + 4]) for i in range(len(ids) - 3)} for ids in (rows[0], rows[1])]
    assert not grams[0] & grams[1]


def test_rows_do_not_repeat_a_text_written_before_the_call(fields, fp32):
    tok = fp32.tokenizer
    text = render_chat(tok, "explain", **fields[0])
    before = next(generate_rows(fp32, [text], 24)).text  # what the same prompt writes greedily
    again = next(generate_rows(fp32, [text], 24, sampling=Sampling(distinct_ngram=4,
                                                                   avoid=(tuple(encode(tok, before)),)))).text
    ids = [encode(tok, t) for t in (before, again)]
    grams = [{tuple(row[i:i + 4]) for i in range(len(row) - 3)} for row in ids]
    assert again != before and not grams[0] & grams[1]


def test_the_distinct_phrase_ban_spares_a_token_that_goes_on_copying_a_title():
    import torch

    from agent.llm.lookahead import ban_repeats

    draft = [[1, 2, 3, 4], [1, 2, 3]]  # row 1 would repeat row 0's 4-gram with token 4
    logits = torch.zeros(8)
    ban_repeats(logits, 1, draft, 4)
    assert logits[4] == float("-inf")
    logits = torch.zeros(8)
    ban_repeats(logits, 1, draft, 4, exempt=lambda token: token == 4)  # 4 goes on copying a title
    assert logits[4] == 0
    logits = torch.zeros(8)
    ban_repeats(logits, 1, [[], [1, 2, 3]], 4, avoid=[(1, 2, 3, 5)])  # a text written before the call
    assert logits[5] == float("-inf")


def test_an_abandoned_generation_stops_and_frees_the_model(fields, fp32):
    tok = fp32.tokenizer
    texts = [render_chat(tok, "explain", **f) for f in fields]
    stream = generate_rows(fp32, texts, 200)
    next(stream)
    stream.close()
    assert fp32.lock.acquire(timeout=5)
    fp32.lock.release()


@pytest.fixture(scope="module")
def two_adapters(shared_home, tmp_path_factory):
    """The base model with two random (non-zero) LoRA adapters: one loaded with it, one attached by name."""
    from peft import LoraConfig, get_peft_model

    folders = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        base = load_model_uncached(home=shared_home, adapter="none", dtype="float32")
        model = get_peft_model(base.model, LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"],
                                                      init_lora_weights=False))
        model.peft_config["default"].base_model_name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
        folder = tmp_path_factory.mktemp(f"adapter{seed}")
        model.save_pretrained(folder)
        folders.append(folder)
    llm = load_model_uncached(home=shared_home, adapter=folders[0], dtype="float32")
    attach_adapter(llm, "explain", folders[1])
    return llm, folders


def _greedy(llm, adapter, text):
    return next(iter(generate_rows(llm, [text], 16, adapter=adapter, cache=PrefixCache()))).text


def test_each_adapter_answers_as_if_it_were_alone(fields, two_adapters, shared_home):
    from peft import PeftModel

    llm, folders = two_adapters
    text = render_chat(llm.tokenizer, "explain", **fields[0])
    got = {name: _greedy(llm, name, text) for name in (PRIMARY, "explain", NO_ADAPTER)}
    assert len(set(got.values())) == 3  # three different models
    for name, folder in ((PRIMARY, folders[0]), ("explain", folders[1]), (NO_ADAPTER, None)):
        alone = load_model_uncached(home=shared_home, adapter=folder or "none", dtype="float32")
        assert _greedy(alone, None, text) == got[name], name
    base_weight = llm.model.get_base_model().model.layers[0].mlp.up_proj.weight
    assert sum(p.data_ptr() == base_weight.data_ptr() for p in llm.model.parameters()) == 1  # one base copy


def test_two_threads_with_different_adapters_get_their_own_answers(fields, two_adapters):
    llm, _ = two_adapters
    text = render_chat(llm.tokenizer, "explain", **fields[1])
    expected = {name: _greedy(llm, name, text) for name in (PRIMARY, "explain")}
    results: dict[str, list[str]] = {PRIMARY: [], "explain": []}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            for _ in range(3):
                results[name].append(_greedy(llm, name, text))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(name,)) for name in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == {name: [expected[name]] * 3 for name in results}


def test_looking_ahead_writes_what_one_token_per_pass_writes(fields, fp32, checker, fargo_case, plain_case):
    """Prompt-lookup proposals change how many passes a greedy row takes, never its text: with and without claim
    constraints, rows of different lengths in one batch."""
    from agent.llm.constrained import ClaimConstraint

    tok = fp32.tokenizer
    texts = [render_chat(tok, "explain", **f) for f in fields]
    limits = [ClaimConstraint.for_pick(checker, *case) for case in (fargo_case, plain_case)]
    for constraints in (None, limits):
        one = {g.row: (g.text, g.finished) for g in generate_rows(
            fp32, texts, 40, prefix=constant_prefix(tok, "explain"), sampling=Sampling(lookahead=0),
            constraints=constraints)}
        ahead = {g.row: (g.text, g.finished) for g in generate_rows(
            fp32, texts, 40, prefix=constant_prefix(tok, "explain"), sampling=Sampling(lookahead=3),
            constraints=constraints)}
        assert ahead == one and all(text for text, _ in one.values())


def test_worst_logprob_is_the_models_own_least_likely_token_of_the_row(fields, fp32, checker, fargo_case, plain_case):
    """`Generated.worst_logprob` is read off the model's own distribution before any mask: unconstrained greedy rows
    give what transformers' greedy scores give, with and without lookahead; constrained rows report it too."""
    from agent.llm.constrained import ClaimConstraint

    tok = fp32.tokenizer
    texts = [render_chat(tok, "explain", **f) for f in fields]
    expected = []
    for text in texts:
        ids = torch.tensor([encode(tok, text)])
        with torch.inference_mode():
            out = fp32.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=20,
                                      do_sample=False, pad_token_id=tok.pad_token_id, output_scores=True,
                                      return_dict_in_generate=True)
        chosen = out.sequences[0, ids.shape[1]:].tolist()
        expected.append(min(float(torch.log_softmax(s[0].float(), -1)[t]) for s, t in zip(out.scores, chosen)))
    for lookahead in (0, 3):
        got = {g.row: g.worst_logprob for g in generate_rows(fp32, texts, 20, sampling=Sampling(lookahead=lookahead),
                                                             cache=PrefixCache())}
        assert [got[0], got[1]] == pytest.approx(expected, abs=1e-3)
    limits = [ClaimConstraint.for_pick(checker, *case) for case in (fargo_case, plain_case)]
    free = {g.row: g.worst_logprob for g in generate_rows(fp32, texts, 40)}
    bound = {g.row: (g.worst_logprob, g.text) for g in generate_rows(fp32, texts, 40, constraints=limits)}
    assert all(bound[r][0] <= 0.0 for r in bound) and all(free[r] <= 0.0 for r in free)
