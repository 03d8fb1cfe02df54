"""The cases over HTTP against a running `marquee serve`."""
from __future__ import annotations

import json
from pathlib import Path

from benchmarks.badinput.corpus import Case, Outcome, check_text, db_snapshot, decode, fresh_session


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


