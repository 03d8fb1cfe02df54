"""`marquee serve`: the Gradio chat page (see agent/web)."""
from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: str = typer.Option(None, help="interface to bind (default: server.host = 127.0.0.1, this machine only)"),
        port: int = typer.Option(None, min=1, max=65535, help="TCP port (default: server.port = 7860)"),
        auth: str = typer.Option(None, help="USER:PASSWORD requires a login: the form in a browser, HTTP Basic for API "
                                 "clients (default: server.auth, else no login)"),
        config: Path = typer.Option(None, help="marquee.toml to read instead of ./marquee.toml"),
    ) -> None:
        """Start the chat page: loads the catalog, index and model once, then serves every visitor."""
        from agent.web.server import serve_forever

        try:
            serve_forever(config=config, host=host, port=port, auth=auth)
        except (FileNotFoundError, ValueError, OSError, RuntimeError) as err:  # bad input, port taken, missing model
            typer.secho(f"marquee serve: {err}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from err
