"""The cases through the `marquee` command in subprocesses."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.badinput.corpus import (CATALOG_HEADER, FAST_CLI, GOOD_ROW, Case, Outcome, check_text, db_snapshot,
                                        decode, fresh_session, raw_bytes, write_config, write_rows)


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


