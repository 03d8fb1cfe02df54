"""Start the chat page: settings → one shared agent (loaded and warmed before "ready") → Gradio queue."""
from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

from agent.web.guard import DEFAULT_MAX_BYTES, HttpGuard

READY_MESSAGE = "Marquee is ready at"  # tests and benchmarks wait for this line on stdout
QUEUE_MAX_SIZE = 64  # waiting requests beyond this are refused ("queue full") instead of piling up


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """'user:password' → (user, password); None/'' → no auth; anything else is a clear ValueError."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user.strip() or not password:
        raise ValueError("--auth expects USER:PASSWORD, e.g. --auth alice:s3cret (the password may contain ':')")
    return user.strip(), password


def check_port_free(host: str, port: int) -> None:
    """Fail in a second, not after loading the models, when the port is taken."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no conflict
        try:
            sock.bind((host, port))
        except OSError as err:
            raise OSError(f"cannot listen on {host}:{port} ({err.strerror}); is another server running there? "
                          "Choose another port with --port") from None


def serve_forever(config: Path | None = None, host: str | None = None, port: int | None = None,
                  auth: str | None = None) -> None:
    from retrieval.config import Settings

    settings = Settings.load(config)
    host = host or settings.server.host
    port = port or settings.server.port
    credentials = parse_auth(auth if auth is not None else settings.server.auth)  # fail before loading models
    check_port_free(host, port)
    from agent.storage import Storage

    storage = Storage.from_settings(settings)  # a damaged or unreachable database fails here, in a second
    if host not in ("127.0.0.1", "localhost", "::1") and not credentials:
        print(f"Warning: serving on {host} without --auth: anyone who can reach this machine can use it.",
              file=sys.stderr, flush=True)

    started = time.perf_counter()
    print(f"Loading catalog, index and model (MARQUEE_HOME={settings.home}) …", flush=True)
    demo = build(settings, storage)
    demo.queue(default_concurrency_limit=settings.server.concurrency, max_size=QUEUE_MAX_SIZE)
    launch(demo, host=host, port=port, auth=credentials, max_request_bytes=settings.server.max_request_bytes)
    print(f"{READY_MESSAGE} {demo.local_url} (loaded in {time.perf_counter() - started:.1f} s; "
          f"{settings.server.concurrency} concurrent turns{'; login required' if credentials else ''}; "
          f"sessions in {storage.location})", flush=True)
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        print("Stopping.", file=sys.stderr)
    finally:
        demo.close()


def build(settings, storage=None):
    """The shared agent and its page. The agent is created and warmed here, once, before serving."""
    from agent.core import RecommenderAgent
    from agent.web import views
    from agent.web.app import build_app

    started = time.perf_counter()
    agent = RecommenderAgent(settings, storage=storage)
    agent.service.ensure_index(progress=sys.stderr.isatty())  # first run: builds the index, with a progress bar
    loaded = time.perf_counter()
    views.warm_up(agent)
    print(f"Agent loaded in {loaded - started:.1f} s, warm-up turn {time.perf_counter() - loaded:.1f} s", flush=True)
    return build_app(agent)


def launch(demo, host: str, port: int, auth: tuple[str, str] | None, max_request_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Gradio's server with our middleware in front, outermost first: agent.web.guard (body size limit,
    security headers), agent.web.login (login backoff, HTTP Basic), agent.web.api (missing arguments)."""
    from starlette.middleware import Middleware

    from agent.web.api import MissingArguments
    from agent.web.app import css, head, theme
    from agent.web.login import LoginGuard

    middleware = [Middleware(HttpGuard, max_bytes=max_request_bytes), Middleware(LoginGuard),
                  Middleware(MissingArguments)]
    demo.launch(server_name=host, server_port=port, auth=auth, share=False, prevent_thread_lock=True, quiet=True,
                app_kwargs={"middleware": middleware},
                show_error=False, inbrowser=False, theme=theme(), css=css(), head=head(), footer_links=["api"],
                run_history=False, ssr_mode=False, pwa=False, mcp_server=False, enable_monitoring=False)
