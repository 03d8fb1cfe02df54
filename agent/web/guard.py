"""HTTP hygiene for every request to the chat page: a request-body size limit and security headers.

An ASGI middleware on Gradio's FastAPI app (passed through `launch(app_kwargs={"middleware": ...})`,
see agent.web.server). It runs before Gradio reads a byte of the body:
- a body over `max_bytes` is refused with 413 (a declared Content-Length at once, a chunked body as
  soon as it grows past the limit), so a 20 MB "message" never reaches memory;
- every response carries a Content-Security-Policy that lets the page load scripts, styles, fonts and
  images only from this server (plus inline data: images), so markup that slips into the page still
  cannot fetch anything from elsewhere (no tracking pixels) or run foreign scripts.
"""
from __future__ import annotations

import json

# What Gradio 6's page needs, and nothing from anywhere but this server: inline scripts and styles (its
# config is an inline <script>), and 'unsafe-eval' because gr.HTML renders its template through
# `new Function` (the cards stay blank without it; tests/web/test_web_hostile.py checks the page works
# under this policy). connect-src 'self' covers the queue's fetch/SSE calls.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'", "script-src 'self' 'unsafe-inline' 'unsafe-eval'", "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:", "font-src 'self' data:", "media-src 'self' data: blob:", "connect-src 'self'",
    "worker-src 'self' blob:", "frame-src 'self'", "object-src 'none'", "base-uri 'self'", "form-action 'self'",
    "frame-ancestors 'self'",
])
SECURITY_HEADERS = ((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"))
DEFAULT_MAX_BYTES = 2_000_000


async def send_json(send, status: int, detail: str, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    """A complete JSON response {"detail": ...} (FastAPI's error shape)."""
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


class HttpGuard:
    """`HttpGuard(app, max_bytes=...)`: size limit and security headers (see the module doc)."""

    def __init__(self, app, max_bytes: int = DEFAULT_MAX_BYTES):
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                  *(h for h in SECURITY_HEADERS if h[0] not in present)]}
            await send(message)

        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                return await send_json(send_with_headers, 400, "invalid Content-Length header")
            if int(declared) > self.max_bytes:
                return await send_json(send_with_headers, 413, self._too_large())
            return await self.app(scope, receive, send_with_headers)
        if scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send_with_headers)
        # no declared length (chunked): read it here, up to the limit, then hand it on
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await send_json(send_with_headers, 413, self._too_large())
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return await self.app(scope, replay(b"".join(chunks), receive), send_with_headers)

    def _too_large(self) -> str:
        return f"request body too large: at most {self.max_bytes} bytes"


def replay(body: bytes, receive):
    """A `receive` that hands the already-read body to the app once, then waits on the real connection."""
    sent = False

    async def receive_again():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_again
