"""Drive the real page from outside, for the browser tests and `marquee bench web`.

`ServerProcess` runs `marquee serve` in a subprocess on a free loopback port and waits for its ready
line; `launch_chromium` starts Debian's Chromium through Playwright (never a downloaded browser).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from agent.web.server import READY_MESSAGE

CHROMIUM = "/usr/bin/chromium"
# Headless, and nothing that phones home (component updates, sync, QUIC probes).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
               "ANONYMIZED_TELEMETRY": "False", "TOKENIZERS_PARALLELISM": "false"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def marquee_executable() -> str:
    script = Path(sys.executable).with_name("marquee")
    return str(script) if script.exists() else "marquee"


class ServerProcess:
    """`marquee serve` on 127.0.0.1:<free port> with its own MARQUEE_HOME; a context manager."""

    def __init__(self, home: Path, *extra_args: str, log_path: Path | None = None, env: dict | None = None,
                 ready_timeout: float = 900.0):
        self.home = Path(home)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.args = [marquee_executable(), "serve", "--port", str(self.port), *extra_args]
        self.env = {**os.environ, **OFFLINE_ENV, "MARQUEE_HOME": str(self.home), **(env or {})}
        self.log_path = log_path
        self.lines: list[str] = []
        self.ready_at: float | None = None  # time.perf_counter() when the ready line was printed
        self._ready = threading.Event()
        self.ready_timeout = ready_timeout  # first start in a fresh home builds the index and converts the model
        self.proc: subprocess.Popen | None = None

    def start(self) -> "ServerProcess":
        """Start the server and wait for its ready line (once: a running server is returned as is)."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        timeout = self.ready_timeout
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, bufsize=1)
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.2):
            if self.proc.poll() is not None:
                raise RuntimeError(f"`{' '.join(self.args)}` exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"server not ready after {timeout:.0f} s:\n{self.log()}")
        return self

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        log = self.log_path.open("a", encoding="utf-8") if self.log_path else None
        for line in self.proc.stdout:
            self.lines.append(line)
            if log:
                log.write(line)
                log.flush()
            if READY_MESSAGE in line and not self._ready.is_set():
                self.ready_at = time.perf_counter()
                self._ready.set()
        if log:
            log.close()

    def log(self, last: int = 60) -> str:
        return "".join(self.lines[-last:])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def launch_chromium(playwright):
    """Debian's Chromium via Playwright's sync API (`scripts/browser_deps.sh` installs it)."""
    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} not found; install it with `bash scripts/browser_deps.sh` "
                                "(Debian package `chromium`)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def is_local(url: str) -> bool:
    """True for loopback http(s)/ws(s) URLs and for in-page data:/blob: URLs (no network)."""
    if url.startswith(("data:", "blob:", "about:")):
        return True
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")


class ChatPage:
    """The chat page as a person uses it, through its visible controls (Playwright sync API)."""

    def __init__(self, page, url: str):
        self.page = page
        self.url = url

    def open(self) -> "ChatPage":
        self.page.goto(self.url)
        self.page.wait_for_selector("#mq-input textarea")
        return self

    def turns(self) -> int:
        return int(self.page.get_attribute("#mq-understood .mq-understood", "data-turns") or 0)

    def send(self, text: str, timeout_ms: float = 180_000) -> list[dict]:
        """Type a message, press Enter, wait until the turn has finished; returns the cards shown."""
        before = self.turns()
        box = self.page.locator("#mq-input textarea")
        box.fill(text)
        box.press("Enter")
        self.wait_for_turn(before + 1, timeout_ms)
        return self.cards()

    def wait_for_turn(self, number: int, timeout_ms: float = 180_000) -> None:
        self.page.wait_for_selector(f'#mq-understood .mq-understood[data-turns="{number}"]', timeout=timeout_ms)

    def bot_messages(self) -> list[str]:
        return self.page.locator('#mq-chatbot [data-testid="bot"]').all_inner_texts()

    def cards(self) -> list[dict]:
        """The visible cards, as the data attributes the page renders them with."""
        return self.page.eval_on_selector_all(
            ".mq-card-body", """els => els.filter(e => e.offsetParent !== null).map(e => ({
                item_id: e.dataset.itemId, title: e.querySelector('.mq-title').textContent,
                year: e.dataset.year ? Number(e.dataset.year) : null,
                genres: e.dataset.genres ? e.dataset.genres.split('|') : [], status: e.dataset.status}))""")

    def feedback(self, item_id: str, action: str) -> None:
        """Click ♥ Like / ✕ Dislike / ✓ Seen on the card of `item_id`; waits until the card shows it."""
        card = self.page.locator(".mq-card", has=self.page.locator(f'.mq-card-body[data-item-id="{item_id}"]'))
        card.locator(f"button.mq-{action}").click()
        status = {"like": "liked", "dislike": "disliked", "seen": "seen"}[action]
        self.page.wait_for_selector(f'.mq-card-body[data-item-id="{item_id}"][data-status="{status}"]')

    def selected_genres(self, which: str = "in") -> list[str]:
        return self.page.locator(f"#mq-genres-{which} .token > span").all_inner_texts()

    def set_preferences(self, genres: list[str] | None = None, year_min: int | None = None,
                        year_max: int | None = None, count: int | None = None) -> None:
        """Edit the preference panel like a person would, then press "Apply preferences"."""
        if genres is not None:
            self._set_genres("in", genres)
        for field, value in (("min", year_min), ("max", year_max)):
            if value is not None:
                self.page.locator(f"#mq-year-{field} input").fill(str(value))
                self.page.locator(f"#mq-year-{field} input").press("Tab")
        if count is not None:
            number = self.page.locator('#mq-count input[type="number"]')
            number.fill(str(count))
            number.press("Tab")
        self.page.locator("#mq-apply").click()
        self.page.wait_for_selector("#mq-prefs-status :text('Saved')")

    def _set_genres(self, which: str, genres: list[str]) -> None:
        root = self.page.locator(f"#mq-genres-{which}")
        if root.locator(".remove-all").count():
            root.locator(".remove-all").click()
        box = root.locator("input[role='combobox']")
        for genre in genres:
            box.click()
            box.fill(genre)
            self.page.locator(f"#mq-genres-{which} ul[role='listbox'] li", has_text=genre).first.click()
        self.page.locator("#mq-header").click()  # close the option list

    def horizontal_overflow(self) -> int:
        """Pixels by which the page is wider than the window (0 = no horizontal scrolling)."""
        return int(self.page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))
