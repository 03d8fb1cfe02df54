"""The corpus file, its cases and the helpers every interface shares (see benchmarks/badinput/__init__.py)."""
from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).parents[1] / "data" / "bad_inputs.jsonl"
INTERFACES = ("python", "http", "cli")
KINDS = ("message", "session_id", "user_id", "feedback", "preferences", "config", "catalog", "interactions",
         "repl", "argv")
FAST_CLI = ["--no-rerank", "--explain", "template"]
CATALOG_HEADER = {"csv": "item_id,title,year,genres,description", "jsonl": None}
GOOD_ROW = {"csv": "g1,Good Film,1990,Comedy,fine", "jsonl": '{"item_id": "g1", "title": "Good Film", "year": 1990}'}
INTERACTIONS_HEADER = "user_id,item_id,rating,timestamp"
GOOD_INTERACTION = "u1,g1,4,100"


# ------------------------------------------------------------------------------------------- the corpus
@dataclass
class Case:
    id: str
    kind: str
    input: Any
    expect: str  # "error" | "reply" | "skip" (the CLI skips blank lines)
    match: str | None = None
    overrides: dict = field(default_factory=dict)

    def on(self, interface: str) -> "Case | str":
        """The case as `interface` runs it, or the reason it does not apply there ("n/a: …")."""
        override = self.overrides.get(interface, {})
        if isinstance(override, str):
            return override
        expect = override.get("expect", self.expect)
        match = override.get("match", self.match if expect == self.expect else None)
        return Case(self.id, self.kind, override.get("input", self.input), expect, match)


def load_corpus(path: Path = CORPUS) -> list[Case]:
    cases = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            overrides = {name: row[name] for name in INTERFACES if name in row}
            cases.append(Case(row["id"], row["kind"], row["input"], row["expect"], row.get("match"), overrides))
    return cases


def decode(value: Any) -> Any:
    """Spelled-out inputs: {"$repeat": [text, n]}, {"$int": [digit, n]}, {"$concat": [part, …]} and {"$bytes": hex} (bytes that are
    not UTF-8, as Python hands them to a program: decoded with surrogateescape); lists and dicts recursively."""
    if isinstance(value, dict):
        if set(value) == {"$repeat"}:
            text, times = value["$repeat"]
            return text * times
        if set(value) == {"$int"}:  # a whole number with n digits
            digit, times = value["$int"]
            return int(digit * times)
        if set(value) == {"$concat"}:
            return "".join(decode(part) for part in value["$concat"])
        if set(value) == {"$bytes"}:
            return bytes.fromhex(value["$bytes"]).decode("utf-8", "surrogateescape")
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def raw_bytes(text: str) -> bytes:
    """Text as the bytes a file or a pipe would carry (surrogates back to the bytes they stood for, or to
    the invalid UTF-8 sequences that spell them)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


@dataclass
class Outcome:
    case: str
    interface: str
    ok: bool | None  # None: not applicable
    detail: str = ""


def check_text(case: Case, text: str, error: bool) -> str:
    """'' when `text` (a reply or an error message) is what the case expects, else what is wrong."""
    if error != (case.expect == "error"):
        return f"expected {case.expect}, got {'error' if error else 'reply'}: {text[:300]!r}"
    if case.match and case.match.lower() not in text.lower():
        return f"missing {case.match!r} in {text[:300]!r}"
    return ""


def db_snapshot(path: Path) -> tuple:
    """Row counts and the latest write of the agent's SQLite file (a rejected call must not change it)."""
    if not Path(path).exists():
        return ()
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
        return db.execute("SELECT (SELECT count(*) FROM sessions), (SELECT max(updated_at) FROM sessions), "
                          "(SELECT count(*) FROM messages), (SELECT count(*) FROM feedback)").fetchone()


def fresh_session(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def write_config(spec: dict, workdir: Path) -> tuple[Path | None, dict[str, str]]:
    """A case's {"toml": {...} | "raw text", "env": {...}} as a marquee.toml file and environment variables."""
    path = None
    if "toml" in spec:
        path = Path(workdir) / f"config-{uuid.uuid4().hex[:8]}.toml"
        body = spec["toml"] if isinstance(spec["toml"], str) else toml_text(spec["toml"])
        path.write_bytes(raw_bytes(body))
    return path, {k: str(v) for k, v in spec.get("env", {}).items()}


def toml_text(tables: dict) -> str:
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float) and v != v:
            return "nan"
        if isinstance(v, float) and v in (float("inf"), float("-inf")):
            return "inf" if v > 0 else "-inf"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v) if isinstance(v, str) else repr(v)

    lines = []
    for section, keys in tables.items():
        if isinstance(keys, dict):
            lines.append(f"[{section}]")
            lines += [f"{k} = {value(v)}" for k, v in keys.items()]
        else:
            lines.insert(0, f"{section} = {value(keys)}")
    return "\n".join(lines) + "\n"


def write_rows(workdir: Path, spec: Case, rows: list[str], interactions: bool) -> tuple[Path, list[tuple[Path, int]]]:
    """A CSV/JSONL file: header (CSV), one good row, then `rows`; returns it and each row's first line."""
    fmt = (spec.input.get("format") if isinstance(spec.input, dict) else None) or "csv"
    rows = [r["row"] if isinstance(r, dict) else r for r in rows]
    header = INTERACTIONS_HEADER if interactions else CATALOG_HEADER[fmt]
    good = GOOD_INTERACTION if interactions else GOOD_ROW[fmt]
    lines = ([header] if header else []) + [good]
    where = []
    for row in rows:
        where.append(sum(part.count("\n") + 1 for part in lines) + 1)
        lines.append(row)
    path = Path(workdir) / f"{'interactions' if interactions else 'catalog'}-{uuid.uuid4().hex[:8]}.{fmt}"
    path.write_bytes(raw_bytes("\n".join(lines) + "\n"))
    return path, [(path, line) for line in where]


