"""Browser-test fixtures: one real `marquee serve` per test session, Debian's Chromium via Playwright.

The server runs in a subprocess on a free 127.0.0.1 port with the session's shared MARQUEE_HOME, so the
index and the converted model are built once for the whole test run. Every page records the URL of
each request it makes; tests assert they all stay on localhost.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.web_driver import ServerProcess, launch_chromium

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"  # gitignored; CI keeps it
# The test server runs with basic auth on, so every test also goes through the login (a ':' in the
# password checks that only the first ':' separates user from password).
WEB_USER, WEB_PASSWORD = "tester", "pa:ss-word"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def web_auth() -> tuple[str, str]:
    return WEB_USER, WEB_PASSWORD


@pytest.fixture(scope="session")
def web_server(shared_home, artifacts_dir):
    log_path = artifacts_dir / "web-server.log"
    log_path.unlink(missing_ok=True)
    # The real agent with the real reranker model; explanations come from the catalog-fact template so
    # that a turn takes seconds on 2 CPU cores (the LLM explainer is tested in tests/llm).
    with ServerProcess(shared_home, "--auth", f"{WEB_USER}:{WEB_PASSWORD}", log_path=log_path,
                       env={"MARQUEE_AGENT__EXPLAIN": "template"}, ready_timeout=1200) as server:
        yield server


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


class RecordingContext:
    """A fresh browser context (its own cookies/storage = a separate visitor) that logs every request."""

    def __init__(self, browser, **options):
        self.context = browser.new_context(**options)
        self.requests: list[str] = []
        self.context.on("request", lambda request: self.requests.append(request.url))

    def log_in(self, url: str, user: str = WEB_USER, password: str = WEB_PASSWORD) -> None:
        """What the login form does: POST /login sets the session cookie for this context only."""
        response = self.context.request.post(f"{url}login", form={"username": user, "password": password})
        assert response.ok, f"login failed: {response.status} {response.text()[:200]}"

    def new_page(self):
        return self.context.new_page()


@pytest.fixture
def new_context(browser, web_server):
    """`new_context(**playwright_options)`: a logged-in visitor; `login=False` for an anonymous one."""
    contexts: list[RecordingContext] = []

    def make(login: bool = True, **options) -> RecordingContext:
        contexts.append(RecordingContext(browser, **options))
        if login:
            contexts[-1].log_in(web_server.url)
        return contexts[-1]

    yield make
    for ctx in contexts:
        ctx.context.close()
