"""The real `marquee serve`: no shared default session, missing arguments, login backoff, HTTP Basic (plain
HTTP and gradio_client), request size limit and security headers, and a log without tracebacks."""
from __future__ import annotations

import base64
import json
import uuid

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

pytestmark = pytest.mark.slow


def call(url: str, auth, api: str, data: list) -> tuple[str, str]:
    """A raw Gradio HTTP call: ("complete" | "error", the event's data)."""
    with httpx.Client(auth=auth, timeout=300) as http:
        body = json.dumps({"data": data})  # NaN / Infinity allowed: what a careless client may send
        event = http.post(f"{url}gradio_api/call/{api}", content=body,
                          headers={"content-type": "application/json"}).json()["event_id"]
        kind = None
        with http.stream("GET", f"{url}gradio_api/call/{api}/{event}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and kind in ("complete", "error"):
                    return kind, line.split(":", 1)[1].strip()
    raise AssertionError("the event stream ended without a result")


def test_callers_without_a_session_id_never_share_one(web_server, web_auth):
    client = Client(web_server.url, auth=web_auth, verbose=False, download_files=False)
    first = client.predict("only horror films from the 70s", api_name="/chat")
    second = client.predict("something to watch", api_name="/chat")
    assert first["session_id"] != second["session_id"] and len(first["session_id"]) == 32
    assert "Horror" not in second["preferences"]["genres"]
    assert client.predict(first["session_id"], api_name="/preferences")["genres"] == ["Horror"]
    with pytest.raises(AppError, match="session_id is required"):
        client.predict(None, api_name="/preferences")


def test_raw_http_calls_with_missing_arguments_get_answers_not_tracebacks(web_server, web_auth):
    lines_before = len(web_server.lines)
    kind, data = call(web_server.url, web_auth, "chat", ["comedies"])
    assert kind == "complete" and '"session_id"' in data and "Comedy" in data
    kind, data = call(web_server.url, web_auth, "reset", [])
    assert kind == "error" and "session_id is required" in data
    kind, data = call(web_server.url, web_auth, "set_preferences", ["s", {"year_min": float("inf")}])
    assert kind == "error" and "invalid year_min: must be a whole number, got inf" in data
    assert not [line for line in web_server.lines[lines_before:] if "Traceback" in line]


def test_http_basic_works_for_plain_http_and_gradio_client(web_server, web_auth):
    assert httpx.get(f"{web_server.url}config", auth=web_auth).status_code == 200
    wrong = httpx.get(f"{web_server.url}config", auth=(web_auth[0], "wrong"))
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Basic")
    header = {"Authorization": "Basic " + base64.b64encode(":".join(web_auth).encode()).decode()}
    client = Client(web_server.url, headers=header, verbose=False, download_files=False)
    sid = uuid.uuid4().hex
    assert client.predict(sid, {"count": 3}, api_name="/set_preferences")["count"] == 3


def test_failed_logins_slow_down(web_server, web_auth):
    """A name of its own, so the other tests' logins from this address are not slowed down."""
    name = f"mallory-{uuid.uuid4().hex[:6]}"
    codes = [httpx.post(f"{web_server.url}login", data={"username": name, "password": "guess"}).status_code
             for _ in range(4)]
    assert codes == [400, 400, 400, 429]
    refused = httpx.post(f"{web_server.url}login", data={"username": name, "password": "guess"})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    ok = httpx.post(f"{web_server.url}login", data={"username": web_auth[0], "password": web_auth[1]})
    assert ok.status_code == 200


def test_big_bodies_are_refused_and_every_response_has_the_policy(web_server, web_auth):
    page = httpx.get(web_server.url, auth=web_auth)
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data: blob:" in policy
    big = httpx.post(f"{web_server.url}gradio_api/call/chat", auth=web_auth,
                     json={"data": ["x" * 3_000_000, "s"]})
    assert big.status_code == 413 and "request body too large" in big.json()["detail"]
    assert big.headers["content-security-policy"] == policy
