"""The tokens of a tokenizer by the letters they spell: which tokens the words of a pick could ever use, found with one
vectorised mask instead of a check per token (the claim-constrained decoder, agent/llm/constrained.py, runs its
per-token checks only on those)."""
from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

PROSE = re.compile(r"[A-Za-z0-9 .,;:'\"()%!?-]*")  # every character a token may bring (no markup, no newline)


@lru_cache(maxsize=8)
def _token_texts(tokenizer) -> tuple[str, ...]:
    """The text of every token id (as decoding it alone gives; byte pieces of non-ASCII characters give "\ufffd")."""
    return tuple(tokenizer.decode([i]) for i in range(len(tokenizer)))


_TABLE_LOCK = threading.RLock()  # token_index reads token_texts under it


def token_texts(tokenizer) -> tuple[str, ...]:
    with _TABLE_LOCK:
        return _token_texts(tokenizer)


_LETTERS = re.compile(r"[a-z]+")


def _letter_runs(text: str) -> tuple[str, ...]:
    return tuple(_LETTERS.findall(text.lower()))


@dataclass(frozen=True, eq=False)  # hashed by identity: one per tokenizer (the key of `_shared_candidates`)
class TokenIndex:
    """The tokens of a tokenizer by the letters they spell, to find at once which tokens a pick's words could ever
    use: a token is a candidate when it is plain prose and each of its letter runs is part of one of the words."""

    size: int
    free: tuple[int, ...]  # prose tokens without letters: digits, punctuation, spaces
    by_run: dict[str, tuple[int, ...]]  # a token's single letter run (lower case) -> the tokens spelling it
    mixed: tuple[tuple[int, tuple[str, ...]], ...]  # tokens with several letter runs ("'s", "e.g")

    @classmethod
    def build(cls, texts: Sequence[str]) -> "TokenIndex":
        free, by_run, mixed = [], {}, []
        for token, text in enumerate(texts):
            if not text or not PROSE.fullmatch(text):
                continue
            runs = _letter_runs(text)
            if not runs:
                free.append(token)
            elif len(runs) == 1:
                by_run.setdefault(runs[0], []).append(token)
            else:
                mixed.append((token, runs))
        return cls(len(texts), tuple(free), {k: tuple(v) for k, v in by_run.items()}, tuple(mixed))

    def candidates(self, words: frozenset[str]) -> set[int]:
        """The tokens whose every letter run is a substring of one of `words`."""
        parts = {run[i:j] for w in words for run in _letter_runs(w)
                 for i in range(len(run)) for j in range(i + 1, len(run) + 1)}
        ids = set(self.free)
        for part in parts:
            ids.update(self.by_run.get(part, ()))
        ids.update(token for token, runs in self.mixed if all(r in parts for r in runs))
        return ids


@lru_cache(maxsize=8)
def _token_index(tokenizer) -> TokenIndex:
    return TokenIndex.build(token_texts(tokenizer))


def token_index(tokenizer) -> TokenIndex:
    with _TABLE_LOCK:
        return _token_index(tokenizer)


@lru_cache(maxsize=4)
def shared_candidates(index: TokenIndex, words: frozenset[str]) -> frozenset[int]:
    """The candidates of the closed vocabulary every pick shares (computed once per tokenizer)."""
    return frozenset(index.candidates(words))
