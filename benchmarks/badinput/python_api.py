"""The cases through the Python API, in this process."""
from __future__ import annotations

import json
import os
from pathlib import Path

from benchmarks.badinput.corpus import (CATALOG_HEADER, GOOD_ROW, Case, Outcome, check_text, db_snapshot, decode,
                                        fresh_session, write_config, write_rows)


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


