"""The HTTP middleware in process (no server): body size limit and security headers (agent/web/guard.py),
login backoff and HTTP Basic (agent/web/login.py)."""
from __future__ import annotations

import base64

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from agent.web.guard import CONTENT_SECURITY_POLICY, HttpGuard
from agent.web.login import LoginBackoff, LoginGuard

PASSWORD = "pa:ss"


class FakeGradio(Starlette):
    """What LoginGuard reads from Gradio's app: the credentials, the token table and the cookie name."""

    def __init__(self, auth=None, **kwargs):
        super().__init__(**kwargs)
        self.auth, self.tokens, self.cookie_id = auth, {}, "cid"


async def echo(request: Request):
    body = await request.body()
    token = request.cookies.get("access-token-cid")
    return JSONResponse({"size": len(body), "user": request.app.tokens.get(token)})


async def login(request: Request):
    form = await request.form()
    ok = (request.app.auth or {}).get(form.get("username")) == form.get("password")
    return JSONResponse({"success": True} if ok else {"detail": "Incorrect credentials."}, status_code=200 if ok else 400)


def app(max_bytes=1000, auth=None, backoff=None):
    routes = [Route("/echo", echo, methods=["GET", "POST"]), Route("/login", login, methods=["POST"])]
    return TestClient(FakeGradio(auth=auth, routes=routes, middleware=[
        Middleware(HttpGuard, max_bytes=max_bytes), Middleware(LoginGuard, backoff=backoff)]))


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# ------------------------------------------------------------------ size limit and headers
def test_bodies_over_the_limit_are_refused_before_they_are_read():
    client = app(max_bytes=1000)
    assert client.post("/echo", content=b"x" * 1000).json()["size"] == 1000
    declared = client.post("/echo", content=b"x" * 1001)
    assert declared.status_code == 413 and "at most 1000 bytes" in declared.json()["detail"]
    chunked = client.post("/echo", content=(b"x" * 300 for _ in range(5)))  # no Content-Length
    assert chunked.status_code == 413
    assert client.post("/echo", content=(b"x" * 300 for _ in range(3))).json()["size"] == 900
    assert client.post("/echo", headers={"content-length": "12abc"}, content=b"x").status_code == 400


def test_every_response_forbids_loading_from_elsewhere():
    client = app()
    for response in (client.get("/echo"), client.get("/missing"), client.post("/echo", content=b"x" * 5000)):
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["x-content-type-options"] == "nosniff"
    policy = dict(part.split(" ", 1) for part in CONTENT_SECURITY_POLICY.split("; "))
    assert policy["img-src"] == "'self' data: blob:" and policy["default-src"] == "'self'"
    assert all("http" not in sources and "*" not in sources for sources in policy.values())


# ------------------------------------------------------------------ backoff
class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_backoff_is_free_at_first_then_doubles_up_to_a_cap_and_forgets():
    clock = Clock()
    backoff = LoginBackoff(free=3, base=1.0, cap=8.0, forget_after=600, clock=clock)
    key = ("10.0.0.1", "alice")
    for _ in range(3):
        assert backoff.wait(key) == 0
        backoff.failed(key)
    assert backoff.wait(key) == 1.0
    waits = []
    for _ in range(5):
        clock.now += backoff.wait(key)
        backoff.failed(key)
        waits.append(backoff.wait(key))
    assert waits == [2.0, 4.0, 8.0, 8.0, 8.0]
    assert backoff.wait(("10.0.0.2", "alice")) == 0  # another client is not slowed down
    clock.now += 601
    assert backoff.wait(key) == 0
    backoff.failed(key)
    backoff.succeeded(key)
    assert backoff.wait(key) == 0


def test_backoff_memory_is_bounded():
    backoff = LoginBackoff(max_keys=100)
    for n in range(1000):
        backoff.failed((f"10.0.{n // 250}.{n % 250}", "x"))
    assert len(backoff._failures) == 100


def test_failed_form_logins_slow_down_that_client_and_name():
    clock = Clock()
    client = app(auth={"alice": PASSWORD}, backoff=LoginBackoff(free=3, clock=clock))
    for _ in range(3):
        assert client.post("/login", data={"username": "alice", "password": "wrong"}).status_code == 400
    refused = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert "too many failed logins" in refused.json()["detail"]
    assert client.post("/login", data={"username": "bob", "password": "x"}).status_code == 400  # other name
    clock.now += 1.5
    assert client.post("/login", data={"username": "alice", "password": PASSWORD}).status_code == 200
    assert client.post("/login", data={"username": "alice", "password": "wrong"}).status_code == 400  # reset


def test_multipart_login_forms_count_too():
    client = app(auth={"alice": PASSWORD}, backoff=LoginBackoff(free=1))
    form = {"username": (None, "alice"), "password": (None, "wrong")}
    assert client.post("/login", files=form).status_code == 400
    assert client.post("/login", files=form).status_code == 429


# ------------------------------------------------------------------ HTTP Basic
def test_http_basic_logs_the_request_in_and_wrong_credentials_get_401():
    client = app(auth={"alice": PASSWORD})
    first = client.get("/echo", headers=basic("alice", PASSWORD))
    assert first.status_code == 200 and first.json()["user"] == "alice"
    second = client.get("/echo", headers=basic("alice", PASSWORD))
    assert second.json()["user"] == "alice" and len(client.app.tokens) == 1  # one token, reused
    for headers in (basic("alice", "wrong"), basic("mallory", PASSWORD), {"Authorization": "Basic !!notbase64"},
                    {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()}):
        denied = client.get("/echo", headers=headers)
        assert denied.status_code == 401 and denied.headers["www-authenticate"].startswith("Basic")
    assert client.get("/echo").json()["user"] is None  # no header: Gradio's own check decides


def test_http_basic_shares_the_backoff():
    client = app(auth={"alice": PASSWORD}, backoff=LoginBackoff(free=2))
    assert [client.get("/echo", headers=basic("alice", "x")).status_code for _ in range(3)] == [401, 401, 429]


def test_without_auth_nothing_is_guarded():
    client = app(auth=None)
    assert client.get("/echo", headers=basic("alice", "x")).status_code == 200
    assert all(client.post("/login", data={"username": "a", "password": "b"}).status_code != 429 for _ in range(6))


@pytest.mark.parametrize("path", ["/login", "/login/"])
def test_login_bodies_are_bounded(path):
    client = app(max_bytes=10_000_000, auth={"alice": PASSWORD})
    assert client.post(path, content=b"username=" + b"a" * 100_000).status_code == 413
