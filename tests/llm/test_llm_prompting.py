"""The shared prompt builder: single-token labels, permutation mapping, training examples, content-free prompt."""
from __future__ import annotations

import pytest

from agent.llm.prompting import LabelError, LabelSet, UserSummary, clean, encode
from agent.llm.scorers.listwise import build_rerank_prompt, content_free_prompt, training_example

TITLES = ["Toy Story (1995)", "GoldenEye (1995)", "Heat (1995)", "Alien (1979)", "Fargo (1996)"]


def test_labels_are_single_distinct_tokens_for_smollm2(llm):
    labels = LabelSet.for_tokenizer(llm.tokenizer, 20)
    assert labels.labels == tuple("ABCDEFGHIJKLMNOPQRST")
    assert len(set(labels.token_ids)) == 20
    for label, token in zip(labels.labels, labels.token_ids):
        assert llm.tokenizer.encode(label, add_special_tokens=False) == [token]


def test_labels_tokenize_as_one_token_inside_the_prompt(llm):
    prompt = build_rerank_prompt(llm.tokenizer, UserSummary(request="space films"), TITLES)
    ids = encode(llm.tokenizer, prompt.text)
    for token in prompt.label_token_ids:  # each candidate line starts with its label token
        assert token in ids
    # the answer is read right after the prompt: prompt + label must be exactly one extra token
    assert encode(llm.tokenizer, prompt.text + prompt.labels[2]) == ids + [prompt.label_token_ids[2]]


def test_tokenizer_without_single_token_labels_is_refused():
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(WordLevel({"[UNK]": 0, "hello": 1}, unk_token="[UNK]"))
    raw.pre_tokenizer = Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]")
    with pytest.raises(LabelError, match="single-token labels"):
        LabelSet.for_tokenizer(tokenizer, 20)


def test_permuted_prompt_maps_labels_back_to_candidates(llm):
    order = (3, 0, 4, 1, 2)
    prompt = build_rerank_prompt(llm.tokenizer, UserSummary(), TITLES, order=order)
    assert "A. Alien (1979)" in prompt.text and "C. Fargo (1996)" in prompt.text
    assert prompt.targets == {3: 0, 0: 1, 4: 2, 1: 3, 2: 4} and prompt.label_of(4) == "C"
    with pytest.raises(ValueError, match="permutation"):
        build_rerank_prompt(llm.tokenizer, UserSummary(), TITLES, order=(0, 0, 1, 2, 3))
    with pytest.raises(ValueError, match="labels"):
        build_rerank_prompt(llm.tokenizer, UserSummary(), TITLES * 5)


def test_training_example_is_prompt_plus_target_label(llm):
    prompt = build_rerank_prompt(llm.tokenizer, UserSummary(recent=("Heat (1995)",)), TITLES, order=(4, 3, 2, 1, 0))
    example = training_example(llm.tokenizer, prompt, target=1)  # GoldenEye, shown at position 3 → "D"
    ids = encode(llm.tokenizer, prompt.text)
    d_token = llm.tokenizer.encode("D", add_special_tokens=False)[0]
    assert example["input_ids"] == ids + [d_token]
    assert example["labels"] == [-100] * len(ids) + [d_token]
    assert len(example["attention_mask"]) == len(example["input_ids"])


def test_user_context_is_rendered_short_and_clean(llm):
    user = UserSummary(liked=("Alien (1979)",), disliked=("Heat (1995)",),
                       recent=tuple(f"Film {i} (1990)" for i in range(30)), request="space\x00 films\n" + "x" * 500)
    prompt = build_rerank_prompt(llm.tokenizer, user, TITLES, history_items=10)
    assert "Liked: Alien (1979)" in prompt.text and "Disliked: Heat (1995)" in prompt.text
    assert "Film 19 (1990)" not in prompt.text and "Film 20 (1990)" in prompt.text  # the 10 most recent
    assert "\x00" not in prompt.text and "x" * 250 not in prompt.text
    assert clean("a\tb\x07  c") == "a b c"


def test_twenty_candidate_prompt_stays_short(llm, catalog):
    items = list(catalog)
    user = UserSummary(recent=tuple(it.label for it in items[100:110]))
    prompt = build_rerank_prompt(llm.tokenizer, user, [it.label for it in items[:20]])
    assert len(encode(llm.tokenizer, prompt.text)) < 520


def test_content_free_prompt_has_no_content(llm):
    prompt = content_free_prompt(llm.tokenizer, 4)
    assert prompt.labels == ("A", "B", "C", "D") and "A. N/A" in prompt.text and "D. N/A" in prompt.text
