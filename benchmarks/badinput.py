"""The bad-input corpus through every interface (`marquee bench badinput`; the tests run the same cases).

`benchmarks/data/bad_inputs.jsonl` holds one input per line: a hostile or malformed message, session or
user id, feedback, preference edit, configuration value, catalog or interaction row, REPL command or
command line. Each case says what a person should get: a clear error (`expect: "error"`, with words the
message must contain) or a sensible reply (`expect: "reply"`, optionally with words it must contain).
Per-interface overrides (`python`, `http`, `cli`) give another input or expectation where an interface
differs, or say why the case does not apply there ("n/a: …").

Every applicable case is run through
- the Python API (`RecommenderAgent`, `Settings.load`, the catalog loaders): a ValueError (TypeError for a
  wrong keyword) with the words, or a reply;
- HTTP: a real `marquee serve`, raw JSON to /gradio_api/call/<endpoint> (HTTP Basic) for every case and
  `gradio_client` for the rejected ones: an error event with the words, no traceback in the server log;
- the CLI: `marquee chat` driven line by line (one REPL for all messages, /set, /like …), one `marquee`
  process per command-line, id and configuration case, `marquee index` over batch files of catalog rows:
  exit code 2 with the words for errors, 0 otherwise, never a traceback.
A rejected call must leave the state unchanged: the session's preferences and the SQLite database
(sessions, messages, feedback) are compared before and after it.
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).parent / "data" / "bad_inputs.jsonl"
INTERFACES = ("python", "http", "cli")
KINDS = ("message", "session_id", "user_id", "feedback", "preferences", "config", "catalog", "interactions",
         "repl", "argv")
TARGETS = {"python.failed": "0", "http.failed": "0", "cli.failed": "0"}
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


# ------------------------------------------------------------------------------------------- Python API
class PythonInterface:
    """The cases through `RecommenderAgent`, `Settings.load` and the catalog loaders, in this process."""

    name = "python"

    def __init__(self, agent, workdir: Path):
        self.agent = agent
        self.workdir = Path(workdir)
        self.db = agent.storage.path

    def run(self, case: Case) -> Outcome:
        spec = case.on(self.name)
        if isinstance(spec, str):
            return Outcome(case.id, self.name, None, spec)
        try:
            problem = getattr(self, f"_{spec.kind}")(spec)
        except Exception as exc:  # noqa: BLE001 — anything unexpected is this case's failure, with its type
            problem = f"unexpected {type(exc).__name__}: {str(exc)[:300]}"
        return Outcome(case.id, self.name, not problem, problem)

    def _rejected_or_reply(self, spec: Case, call, sid: str | None) -> str:
        before = (self._state(sid), db_snapshot(self.db))
        try:
            result = call()
        except (ValueError, TypeError) as exc:
            problem = check_text(spec, str(exc), error=True)
            after = (self._state(sid), db_snapshot(self.db))
            return problem or ("" if after == before else "a rejected call changed the stored state")
        text = result.text + " " + " ".join(result.notes) if hasattr(result, "text") else json.dumps(result)
        return check_text(spec, text, error=False)

    def _state(self, sid: str | None):
        try:
            return self.agent.get_state(sid) if sid else None
        except ValueError:
            return None

    def _message(self, spec):
        sid = fresh_session("py")
        return self._rejected_or_reply(spec, lambda: self.agent.chat(decode(spec.input), session_id=sid), sid)

    def _session_id(self, spec):
        sid = decode(spec.input)
        return self._rejected_or_reply(spec, lambda: self.agent.chat("comedies", session_id=sid),
                                       sid if isinstance(sid, str) else None)

    def _user_id(self, spec):
        sid = fresh_session("py")
        return self._rejected_or_reply(spec, lambda: self.agent.chat("comedies", session_id=sid,
                                                                     user_id=decode(spec.input)), sid)

    def _feedback(self, spec):
        sid = fresh_session("py")
        kwargs = decode(spec.input)
        return self._rejected_or_reply(spec, lambda: self.agent.feedback(sid, **kwargs), sid)

    def _preferences(self, spec):
        sid = fresh_session("py")
        edits = decode(spec.input)
        return self._rejected_or_reply(spec, lambda: self.agent.set_preferences(sid, **edits), sid)

    def _config(self, spec):
        from retrieval.config import Settings

        path, env = write_config(decode(spec.input), self.workdir)
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            Settings.load(path, home=str(self.workdir / "home"))
        except (ValueError, FileNotFoundError) as exc:
            return check_text(spec, str(exc), error=True)
        finally:
            for k, v in saved.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        return check_text(spec, "loaded", error=False)

    def _catalog(self, spec, interactions: bool = False):
        from retrieval.catalog import load_catalog, load_interactions

        path, line = write_rows(self.workdir, spec, [decode(spec.input)], interactions)[1][0]
        try:
            if interactions:
                catalog_path = self.workdir / "good-catalog.csv"
                catalog_path.write_text(f"{CATALOG_HEADER['csv']}\n{GOOD_ROW['csv']}\n", encoding="utf-8")
                load_interactions(path, load_catalog(catalog_path)[0])
            else:
                load_catalog(path)
        except ValueError as exc:
            problem = check_text(spec, str(exc), error=True)
            where = f"{path}:{line}:"
            return problem or ("" if where in str(exc) else f"the error does not name {where}: {str(exc)[:200]}")
        return check_text(spec, "loaded", error=False)

    def _interactions(self, spec):
        return self._catalog(spec, interactions=True)


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


# ------------------------------------------------------------------------------------------- HTTP
ENDPOINT_OF = {"message": "chat", "session_id": "chat", "feedback": "feedback", "preferences": "set_preferences"}


class HttpInterface:
    """The cases against a running `marquee serve` (its URL, HTTP Basic credentials, MARQUEE_HOME and log)."""

    name = "http"

    def __init__(self, url: str, auth: tuple[str, str], home: Path, log_lines: list[str]):
        import httpx

        self.url = url
        self.auth = auth
        self.db = Path(home) / "marquee.db"
        self.log_lines = log_lines
        self.http = httpx.Client(auth=httpx.BasicAuth(*auth), timeout=300)
        self._client = None

    def client(self):
        if self._client is None:
            from gradio_client import Client

            self._client = Client(self.url, auth=self.auth, verbose=False, download_files=False)
        return self._client

    def run(self, case: Case) -> Outcome:
        spec = case.on(self.name)
        if isinstance(spec, str):
            return Outcome(case.id, self.name, None, spec)
        if spec.kind not in ENDPOINT_OF:
            return Outcome(case.id, self.name, None, f"n/a: no HTTP input of kind {spec.kind}")
        log_from = len(self.log_lines)
        try:
            problem = self._run(spec)
        except Exception as exc:  # noqa: BLE001 — the case's failure, with its type
            problem = f"unexpected {type(exc).__name__}: {str(exc)[:300]}"
        traceback = [line for line in self.log_lines[log_from:] if "Traceback" in line]
        if traceback and not problem:
            problem = "a traceback in the server log"
        return Outcome(case.id, self.name, not problem, problem)

    def _run(self, spec: Case) -> str:
        sid = fresh_session("http")
        value = decode(spec.input)
        api = ENDPOINT_OF[spec.kind]
        data = {"message": lambda: [value, sid], "session_id": lambda: ["comedies", value],
                "feedback": lambda: [sid, *value], "preferences": lambda: [sid, value]}[spec.kind]()
        own = sid if spec.kind != "session_id" else (value if isinstance(value, str) else None)
        before = (self._state(own), db_snapshot(self.db))
        kind, text = self.call(api, data)
        if kind == "error":
            problem = check_text(spec, text, error=True)
            if not problem and (self._state(own), db_snapshot(self.db)) != before:
                problem = "a rejected call changed the stored state"
            if not problem and _json_safe(data):
                problem = self._gradio_client(spec, api, data)
            return problem
        return check_text(spec, text, error=False)

    def _state(self, sid: str | None):
        if not sid:
            return None
        kind, text = self.call("preferences", [sid])
        return text if kind == "ok" else None

    def call(self, api: str, data: list) -> tuple[str, str]:
        """("ok", result JSON) or ("error", message): a raw Gradio HTTP call (POST, then the event stream)."""
        body = json.dumps({"data": data})  # ensure_ascii: a lone surrogate travels as \\udXXX, as JSON allows
        response = self.http.post(f"{self.url}gradio_api/call/{api}", content=body,
                                  headers={"content-type": "application/json"})
        if response.status_code != 200:
            return "error", f"HTTP {response.status_code}: {response.text}"
        event_id = response.json()["event_id"]
        event, payload = None, None
        with self.http.stream("GET", f"{self.url}gradio_api/call/{api}/{event_id}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    payload = line.split(":", 1)[1].strip()
                    break
        if event == "error":
            message = (json.loads(payload) or {}).get("error") if payload and payload != "null" else None
            return "error", message or "(no message: the server failed without saying why)"
        return "ok", json.dumps(json.loads(payload), ensure_ascii=False) if payload else ""

    def _gradio_client(self, spec: Case, api: str, data: list) -> str:
        """A rejected call must read the same through `gradio_client`."""
        from gradio_client.exceptions import AppError

        try:
            self.client().predict(*data, api_name=f"/{api}")
        except AppError as exc:
            problem = check_text(spec, str(exc), error=True)
            return f"gradio_client: {problem}" if problem else ""
        except ValueError as exc:  # gradio_client's own argument checks
            return "" if spec.expect == "error" else f"gradio_client refused it: {exc}"
        return "gradio_client: the call was accepted"


def _json_safe(data) -> bool:
    try:
        json.dumps(data, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        return False
    return len(json.dumps(data)) < 1_000_000


# ------------------------------------------------------------------------------------------- CLI
REPL_KINDS = ("message", "preferences", "feedback", "repl")


def repl_line(spec: Case) -> bytes | None:
    """The REPL line for a case (None: not a REPL case). Line breaks inside a message stay: the REPL reads
    each line as a message, which the case's expectation allows for."""
    value = spec.input
    if spec.kind == "message":
        return raw_bytes(decode(value)) if isinstance(decode(value), str) else None
    if spec.kind == "preferences":
        if not isinstance(value, dict):
            return None
        parts = []
        for key, v in decode(value).items():
            text = "none" if v is None else (",".join(map(str, v)) if isinstance(v, list) else str(v))
            parts.append(f"{key}={text}")
        return raw_bytes("/set " + " ".join(parts))
    if spec.kind in ("feedback", "repl") and isinstance(value, str):
        return raw_bytes(decode(value))
    return None


class CliInterface:
    """The cases through the `marquee` command in subprocesses (see the module doc)."""

    name = "cli"

    def __init__(self, home: Path, workdir: Path, env: dict | None = None):
        self.home = Path(home)
        self.workdir = Path(workdir)
        self.env = {**os.environ, "MARQUEE_HOME": str(home), "PYTHONUNBUFFERED": "1", **(env or {})}
        self.marquee = str(Path(sys.executable).with_name("marquee"))

    def run_all(self, cases: list[Case]) -> list[Outcome]:
        specs = [(case, case.on(self.name)) for case in cases]
        outcomes = [Outcome(c.id, self.name, None, s) for c, s in specs if isinstance(s, str)]
        live = [(c, s) for c, s in specs if not isinstance(s, str)]
        repl = [(c, s) for c, s in live if s.kind in REPL_KINDS]
        outcomes += self._repl(repl)
        for kind in ("catalog", "interactions"):
            outcomes += self._rows([(c, s) for c, s in live if s.kind == kind], kind == "interactions")
        singles = [(c, s) for c, s in live if s.kind in ("session_id", "user_id", "config", "argv")]
        with ThreadPoolExecutor(max_workers=2) as pool:  # each waits on its own process
            outcomes += pool.map(lambda pair: self._process(*pair), singles)
        return outcomes

    # one process per case: command lines, ids and configuration
    def _process(self, case: Case, spec: Case) -> Outcome:
        env = dict(self.env)
        value = decode(spec.input)
        if spec.kind == "argv":
            args = value
        elif spec.kind in ("session_id", "user_id"):
            if not isinstance(value, str) or "\x00" in value:
                return Outcome(case.id, self.name, None, "n/a: a command-line argument is text without NUL")
            flag = "--session" if spec.kind == "session_id" else "--user"
            args = ["ask", "comedies", flag, value, *FAST_CLI]
        else:  # config
            path, extra = write_config(value, self.workdir)
            env.update(extra)
            args = ["serve", *(["--config", str(path)] if path else [])]
        try:
            argv = [self.marquee, *[os.fsencode(a) if isinstance(a, str) else a for a in args]]
        except UnicodeEncodeError:
            return Outcome(case.id, self.name, None, "n/a: not representable as a command-line argument")
        try:
            done = subprocess.run(argv, env=env, capture_output=True, timeout=240, cwd=self.workdir,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return Outcome(case.id, self.name, False, "did not finish in 240 s")
        out, err = (done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace"))
        problem = ""
        if "Traceback" in out + err:
            problem = f"a traceback: {err[-300:]}"
        elif spec.expect == "error" and done.returncode != 2:
            problem = f"exit code {done.returncode}, expected 2: {(err or out)[-300:]!r}"
        elif spec.expect != "error" and done.returncode != 0:
            problem = f"exit code {done.returncode}, expected 0: {(err or out)[-300:]!r}"
        else:
            problem = check_text(spec, err if spec.expect == "error" else out + err, spec.expect == "error")
        return Outcome(case.id, self.name, not problem, problem)

    # catalog and interaction rows: batch files through `marquee index`
    def _rows(self, items: list[tuple[Case, Case]], interactions: bool) -> list[Outcome]:
        outcomes = []
        groups: dict[tuple[str, str], list[tuple[Case, Case]]] = {}
        for case, spec in items:
            fmt = (spec.input.get("format") if isinstance(spec.input, dict) else None) or "csv"
            groups.setdefault((fmt, spec.expect), []).append((case, spec))
        for (fmt, expect), group in groups.items():
            for start in range(0, len(group), 15):  # a CatalogError lists the first 20 problems
                chunk = group[start:start + 15]
                outcomes += self._index(chunk, interactions, expect)
        return outcomes

    def _index(self, chunk, interactions: bool, expect: str) -> list[Outcome]:
        spec0 = chunk[0][1]
        path, where = write_rows(self.workdir, spec0, [decode(s.input) for _, s in chunk], interactions)
        home = self.workdir / f"home-{uuid.uuid4().hex[:6]}"
        env = {**self.env, "MARQUEE_HOME": str(home)}
        if interactions:
            catalog = self.workdir / "good-catalog.csv"
            catalog.write_text(f"{CATALOG_HEADER['csv']}\n{GOOD_ROW['csv']}\n", encoding="utf-8")
            env.update(MARQUEE_CATALOG__SOURCE=str(catalog), MARQUEE_CATALOG__INTERACTIONS=str(path))
        else:
            env["MARQUEE_CATALOG__SOURCE"] = str(path)
        done = subprocess.run([self.marquee, "index"], env=env, capture_output=True, timeout=600, cwd=self.workdir,
                              stdin=subprocess.DEVNULL)
        err = done.stderr.decode("utf-8", "replace") + done.stdout.decode("utf-8", "replace")
        outcomes = []
        for (case, spec), (_, line) in zip(chunk, where):
            problem = ""
            if "Traceback" in err:
                problem = f"a traceback: {err[-300:]}"
            elif expect == "error":
                reported = [row for row in err.splitlines() if f"{path}:{line}: " in row]
                if done.returncode != 2:
                    problem = f"exit code {done.returncode}, expected 2"
                elif not reported:
                    problem = f"line {line} is not reported: {err[:300]!r}"
                else:
                    problem = check_text(spec, reported[0], error=True)
            elif done.returncode != 0:
                problem = f"exit code {done.returncode}, expected 0: {err[-300:]!r}"
            outcomes.append(Outcome(case.id, self.name, not problem, problem))
        return outcomes

    # the REPL, driven one line at a time
    def _repl(self, items: list[tuple[Case, Case]]) -> list[Outcome]:
        if not items:
            return []
        session = fresh_session("cli")
        proc = subprocess.Popen([self.marquee, "chat", "--session", session, *FAST_CLI], env=self.env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                cwd=self.workdir)
        output = bytearray()
        reader = threading.Thread(target=_pump, args=(proc.stdout, output), daemon=True)
        reader.start()
        outcomes = []
        try:
            self._send(proc, output, b"/mark-start")
            self._send(proc, output, b"sci-fi and action films", "setup")  # picks for /like N to refer to
            db = self.home / "marquee.db"
            for n, (case, spec) in enumerate(items):
                line = repl_line(spec)
                if line is None:
                    outcomes.append(Outcome(case.id, self.name, None, "n/a: no REPL line for this input"))
                    continue
                before = (db_snapshot(db), len(output))
                segment = self._send(proc, output, line, n)
                problem = _check_segment(spec, segment)
                if not problem and spec.expect == "error" and db_snapshot(db) != before[0]:
                    problem = "a rejected line changed the stored state"
                outcomes.append(Outcome(case.id, self.name, not problem, problem))
            proc.stdin.write(b"/quit\n")
            proc.stdin.close()
            code = proc.wait(timeout=120)
            if code != 0:
                outcomes = [Outcome(o.case, o.interface, False if o.ok is not None else None,
                                    f"the REPL exited with {code}") for o in outcomes]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return outcomes

    def _send(self, proc, output: bytearray, line: bytes, n: int | str = "start") -> str:
        """Write a line and a marker command; return what the REPL printed for the line."""
        start = len(output)
        proc.stdin.write(line + b"\n" + f"/mark-{n}\n".encode())
        proc.stdin.flush()
        marker = f"Unknown command /mark-{n}.".encode()
        deadline = time.monotonic() + 600
        while marker not in output[start:]:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the REPL stopped answering: {bytes(output[-500:]).decode('utf-8', 'replace')}")
            time.sleep(0.02)
        chunk = bytes(output[start:])
        return chunk[:chunk.index(marker)].decode("utf-8", "replace")


def _pump(stream, output: bytearray) -> None:
    for chunk in iter(lambda: stream.read1(65536), b""):
        output.extend(chunk)


def _check_segment(spec: Case, segment: str) -> str:
    if "Traceback" in segment:
        return f"a traceback: {segment[-300:]}"
    replied = "marquee>" in segment
    errors = [line for line in segment.splitlines() if line.startswith("error: ")]
    if spec.expect == "skip":
        return "" if not replied and not errors else f"expected nothing, got {segment[:200]!r}"
    if spec.expect == "error":
        return check_text(spec, " ".join(errors), error=True) if errors else f"no error line: {segment[:300]!r}"
    if errors:
        return f"expected a reply, got {errors[0][:300]!r}"
    if spec.kind == "message" and not replied:
        return f"no reply: {segment[:300]!r}"
    return check_text(spec, segment, error=False)


# ------------------------------------------------------------------------------------------- the benchmark
def summarize(outcomes: list[Outcome], cases: list[Case]) -> dict:
    figures: dict[str, Any] = {"cases": len(cases), "by_kind": {k: sum(c.kind == k for c in cases) for k in KINDS}}
    for interface in INTERFACES:
        mine = [o for o in outcomes if o.interface == interface]
        applicable = [o for o in mine if o.ok is not None]
        figures[interface] = {"applicable": len(applicable), "handled": sum(bool(o.ok) for o in applicable),
                              "failed": sum(o.ok is False for o in applicable),
                              "not_applicable": len(mine) - len(applicable)}
    return figures


def failures(outcomes: list[Outcome]) -> list[str]:
    return [f"{o.interface} {o.case}: {o.detail}" for o in outcomes if o.ok is False]


def run(quick: bool = False) -> dict:
    """Every case through the three interfaces against MARQUEE_HOME's agent (`quick`: every 5th case)."""
    from benchmarks.web_driver import ServerProcess
    from agent.core import RecommenderAgent
    from retrieval.config import Settings

    cases = load_corpus()[::5] if quick else load_corpus()
    settings = Settings.load(agent={"rerank": False, "explain": "template"})
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="marquee-badinput-") as tmp:
        workdir = Path(tmp)
        agent = RecommenderAgent(settings)
        agent.service.ensure_index()
        outcomes = [PythonInterface(agent, workdir).run(c) for c in cases]
        auth = ("bench", "bench:pw")
        with ServerProcess(settings.home, "--auth", ":".join(auth),
                           env={"MARQUEE_AGENT__EXPLAIN": "template"}) as server:
            http = HttpInterface(server.url, auth, settings.home, server.lines)
            outcomes += [http.run(c) for c in cases]
        outcomes += CliInterface(settings.home, workdir).run_all(cases)
    figures = summarize(outcomes, cases)
    figures["failures"] = failures(outcomes)[:20]
    figures["seconds"] = round(time.perf_counter() - started, 1)
    return figures


if __name__ == "__main__":
    from benchmarks.cli import main

    main("badinput")
