"""Chinese names of catalog titles ("泰坦尼克号" = Titanic (1997)), read from the data file aliases_zh.tsv,
found inside Chinese text and shown beside catalog titles in Chinese replies. Chinese has no spaces, so a
name is found as a substring, the longest name first; punctuation inside a name is optional
("星际迷航：第一类接触" = "星际迷航第一类接触"). A name written "~name" in the table is shown, never looked for."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ALIASES_PATH = Path(__file__).with_name("aliases_zh.tsv")
NAME_PUNCTUATION = "：:·・、，, -—–"
SHOWN_ONLY = "~"  # table prefix of a name that replies show but messages are not searched for
_NAME_SPLIT = re.compile("[" + re.escape(NAME_PUNCTUATION) + "]+")


@dataclass(frozen=True)
class AliasRow:
    item_id: str
    label: str  # the catalog label the row was written for
    names: tuple[str, ...]  # looked for in messages
    shown: str  # the name replies show (the row's first name)


@dataclass(frozen=True)
class AliasHit:
    start: int
    end: int
    item_id: str
    label: str
    name: str  # the words as the user wrote them


def read_alias_rows(path: Path = ALIASES_PATH) -> list[AliasRow]:
    """Rows of the alias table; a malformed line raises ValueError naming it."""
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 3 or not all(p.strip() for p in parts):
            raise ValueError(f"{path}:{n}: expected 'item_id<TAB>label<TAB>name | name …'")
        written = [name.strip() for name in parts[2].split("|") if name.strip().lstrip(SHOWN_ONLY)]
        if not written:
            raise ValueError(f"{path}:{n}: a row needs at least one name")
        names = tuple(name for name in written if not name.startswith(SHOWN_ONLY))
        rows.append(AliasRow(parts[0].strip(), parts[1].strip(), names, written[0].lstrip(SHOWN_ONLY)))
    return rows


class AliasIndex:
    """`AliasIndex.for_catalog(labels).find("看过泰坦尼克号和教父")` -> two hits, in text order."""

    def __init__(self, names: Mapping[str, tuple[str, str]]):
        self.names = dict(names)  # name -> (item_id, label)
        self._key_of: dict[str, str] = {}
        parts = []
        for name in sorted(self.names, key=lambda n: (-len(n), n)):
            pieces = [re.escape(p) for p in _NAME_SPLIT.split(name) if p]
            parts.append((r"[\s" + re.escape(NAME_PUNCTUATION) + r"]*").join(pieces))
            self._key_of[_key(name)] = name
        self._pattern = re.compile("|".join(f"(?:{p})" for p in parts) if parts else r"(?!x)x", re.IGNORECASE)

    @classmethod
    def for_catalog(cls, labels: Mapping[str, str], path: Path = ALIASES_PATH) -> "AliasIndex":
        """Names of the rows whose item_id is in the catalog under exactly the row's label."""
        names: dict[str, tuple[str, str]] = {}
        for row in read_alias_rows(path):
            if labels.get(row.item_id) != row.label:
                continue
            for name in row.names:
                names.setdefault(name, (row.item_id, row.label))
        return cls(names)

    def __len__(self) -> int:
        return len(self.names)

    def find(self, text: str) -> list[AliasHit]:
        hits = []
        for m in self._pattern.finditer(text):
            name = self._key_of.get(_key(m.group(0)))
            if name is None:
                continue
            item_id, label = self.names[name]
            hits.append(AliasHit(m.start(), m.end(), item_id, label, m.group(0)))
        return hits


def shown_names(labels: Mapping[str, str], path: Path = ALIASES_PATH) -> dict[str, str]:
    """item_id -> the Chinese name replies show, for the rows whose item_id is in the catalog under exactly the
    row's label (like `AliasIndex.for_catalog`)."""
    return {row.item_id: row.shown for row in read_alias_rows(path) if labels.get(row.item_id) == row.label}


def _key(text: str) -> str:
    return _NAME_SPLIT.sub("", re.sub(r"\s+", "", text)).lower()
