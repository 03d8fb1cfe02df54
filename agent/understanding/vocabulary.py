"""Known words: does the free text of a message mean something ("movies about robots") or is it noise
("asdfgh qwerty")? Known are the whole words of the sentence encoder's vocabulary (the words semantic
search understands as words, not as pieces) and the words of catalog titles."""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

MIN_LENGTH = 3  # shorter tokens ("xq", "zz") say nothing even when a vocabulary lists them


class KnownWords:
    def __init__(self, words: Iterable[str]):
        self.words = frozenset(w.lower() for w in words if len(w) >= MIN_LENGTH)

    @classmethod
    def from_files(cls, vocab: Path | None, extra: Iterable[str] = ()) -> "KnownWords | None":
        """The WordPiece vocabulary file (one token per line; '##' marks word pieces) plus `extra` text;
        None when there is no vocabulary file (then every free text counts as meaningful)."""
        if vocab is None or not Path(vocab).is_file():
            return None
        tokens = Path(vocab).read_text(encoding="utf-8").split()
        whole = (t for t in tokens if re.fullmatch(r"[a-z]+", t))
        return cls([*whole, *(w for text in extra for w in re.findall(r"[a-z]+", text.lower()))])

    def __call__(self, word: str) -> bool:
        return word.lower() in self.words
