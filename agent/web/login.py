"""Login hardening for `marquee serve --auth`: per-client backoff of failed logins, and HTTP Basic.

Gradio's own login is a form (`POST /login` with username and password; the reply sets a session
cookie), which browsers and `gradio_client(auth=...)` use. This ASGI middleware, in front of it:
- slows down guessing: after `free` failed attempts for one user name from one client address, that
  client must wait 1 s, then 2, 4, … up to `cap` seconds between attempts (HTTP 429 with Retry-After,
  whether the password is right or not); a success clears the count. Kept in memory, bounded;
- accepts `Authorization: Basic …` on any request, for API clients and `curl -u` (checked against the
  same credentials, with the same backoff): a valid header is turned into Gradio's session cookie for
  that request, so Gradio sees an ordinary logged-in request. A wrong one gets 401.

It needs the Gradio app's credential table, token table and cookie name (`app.auth`, `app.tokens`,
`app.cookie_id`, gradio 6, pinned in constraints.txt); tests/web/test_web_login.py checks both paths
against a real server.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from urllib.parse import parse_qs

from agent.web.guard import send_json

LOGIN_PATHS = ("/login", "/login/")
MAX_LOGIN_BODY = 64 * 1024  # a login form is a few dozen bytes
REALM = b'Basic realm="Marquee", charset="UTF-8"'


class LoginBackoff:
    """Failed attempts per key (client address, user name) → how long the next attempt must wait."""

    def __init__(self, free: int = 3, base: float = 1.0, cap: float = 60.0, forget_after: float = 900.0,
                 max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.free, self.base, self.cap, self.forget_after, self.max_keys = free, base, cap, forget_after, max_keys
        self.clock = clock
        self._failures: OrderedDict[tuple, tuple[int, float]] = OrderedDict()  # key -> (count, last failure)
        self._lock = threading.Lock()

    def delay(self, failures: int) -> float:
        """Seconds to wait after `failures` consecutive failures (0 for the first `free` ones)."""
        return 0.0 if failures < self.free else min(self.cap, self.base * 2 ** (failures - self.free))

    def wait(self, key: tuple) -> float:
        """Seconds until `key` may try again (0 = now)."""
        with self._lock:
            count, last = self._failures.get(key, (0, 0.0))
            if count and self.clock() - last > self.forget_after:
                self._failures.pop(key, None)
                return 0.0
            return max(0.0, last + self.delay(count) - self.clock()) if count else 0.0

    def failed(self, key: tuple) -> None:
        with self._lock:
            count, _ = self._failures.pop(key, (0, 0.0))
            self._failures[key] = (count + 1, self.clock())
            while len(self._failures) > self.max_keys:  # many addresses or names: forget the oldest
                self._failures.popitem(last=False)

    def succeeded(self, key: tuple) -> None:
        with self._lock:
            self._failures.pop(key, None)


class LoginGuard:
    """`LoginGuard(app, backoff=LoginBackoff())`: see the module doc."""

    def __init__(self, app, backoff: LoginBackoff | None = None):
        self.app = app
        self.backoff = backoff or LoginBackoff()
        self._basic_tokens: dict[str, str] = {}  # user -> the Gradio session token minted for Basic requests

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        gradio_app = scope.get("app")
        if getattr(gradio_app, "auth", None) is None:  # no --auth: nothing to guard
            return await self.app(scope, receive, send)
        if scope.get("method") == "POST" and scope.get("path") in LOGIN_PATHS:
            return await self._form_login(scope, receive, send)
        basic = _basic_credentials(scope)
        if basic is not None:
            return await self._basic(gradio_app, basic, scope, receive, send)
        return await self.app(scope, receive, send)

    # ---------------------------------------------------------------- the login form
    async def _form_login(self, scope, receive, send):
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_LOGIN_BODY:
                return await send_json(send, 413, "login form too large")
        key = (_client(scope), await _form_username(scope, body))
        if await self._refuse_while_waiting(key, send):
            return None
        status = {}

        async def watch(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        await self.app(scope, _replay(body), watch)
        if status.get("code") == 200:
            self.backoff.succeeded(key)
        elif status.get("code") in (400, 401):  # Gradio answers wrong credentials with 400
            self.backoff.failed(key)
        return None

    # ---------------------------------------------------------------- HTTP Basic
    async def _basic(self, gradio_app, credentials, scope, receive, send):
        user, password = credentials
        key = (_client(scope), user)
        if await self._refuse_while_waiting(key, send):
            return None
        if not _valid(gradio_app.auth, user, password):
            self.backoff.failed(key)
            return await send_json(send, 401, "Incorrect credentials.", ((b"www-authenticate", REALM),))
        self.backoff.succeeded(key)
        token = self._basic_tokens.get(user)
        if token is None or gradio_app.tokens.get(token) != user:
            token = secrets.token_urlsafe(16)
            gradio_app.tokens[token] = user
            self._basic_tokens[user] = token
        cookie = f"access-token-{gradio_app.cookie_id}={token}".encode()
        headers = [(k, v) for k, v in scope["headers"] if k != b"authorization"]
        cookies = [v for k, v in headers if k == b"cookie"]
        headers = [(k, v) for k, v in headers if k != b"cookie"]
        headers.append((b"cookie", b"; ".join([*cookies, cookie])))  # last wins over a stale cookie
        return await self.app({**scope, "headers": headers}, receive, send)

    async def _refuse_while_waiting(self, key, send) -> bool:
        wait = self.backoff.wait(key)
        if wait <= 0:
            return False
        seconds = max(1, math.ceil(wait))
        await send_json(send, 429, f"too many failed logins; try again in {seconds} s",
                        ((b"retry-after", str(seconds).encode()),))
        return True


def _client(scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def _basic_credentials(scope) -> tuple[str, str] | None:
    for name, value in scope.get("headers") or []:
        if name == b"authorization" and value[:6].lower() == b"basic ":
            try:
                user, sep, password = base64.b64decode(value[6:].strip(), validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return "", ""
            return (user.strip(), password) if sep else ("", "")
    return None


def _valid(auth, user: str, password: str) -> bool:
    if callable(auth):
        return bool(auth(user, password))
    expected = auth.get(user) if user else None
    # compare even for an unknown user, so the answer takes as long either way
    return hmac.compare_digest(password.encode(), (expected or secrets.token_hex(8)).encode()) and expected is not None


async def _form_username(scope, body: bytes) -> str:
    """The username field of an urlencoded or multipart login form ("" when there is none)."""
    content_type = dict(scope.get("headers") or []).get(b"content-type", b"").decode("latin-1")
    if content_type.startswith("multipart/form-data"):
        from starlette.requests import Request

        try:
            form = await Request(scope, _replay(body)).form()
            return str(form.get("username") or "").strip()
        except Exception:  # noqa: BLE001 — a malformed form: Gradio rejects it itself
            return ""
    values = parse_qs(body.decode("utf-8", errors="replace"))
    return (values.get("username") or [""])[0].strip()


def _replay(body: bytes):
    sent = False

    async def receive():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
