"""`marquee chat` (REPL, streaming), `marquee ask "MSG"` and `marquee eval-chat` (the public conversation set).

    marquee chat --session me                 # /like N, /dislike N, /seen N, /reset, /state, /quit
    echo "sci-fi from the 80s" | marquee chat # works without a terminal: one line per turn
    marquee ask "no war films" --session me --json
    marquee eval-chat --split test            # the held-back split; --split all reports tune and test

Arguments are checked by agent.validation before anything loads: a bad --session or --user exits with
code 2 and one line. In the REPL a bad line (too long, say) is answered with one `error: …` line on
stderr and the conversation goes on; undecodable bytes on stdin read as U+FFFD.
"""
from __future__ import annotations

import enum
import json
import re
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer


class Explain(str, enum.Enum):
    llm = "llm"
    template = "template"


class Switch(str, enum.Enum):
    on = "on"
    off = "off"


class SplitChoice(str, enum.Enum):
    tune = "tune"
    test = "test"  # held back: never used to tune the lexicon (agent/data/README.md)
    all = "all"


ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="marquee.toml to use")]
RerankOpt = Annotated[Optional[bool], typer.Option("--rerank/--no-rerank", help="LLM reranking (default: config)")]
ExplainOpt = Annotated[Optional[Explain], typer.Option("--explain", help="explanations (default: config)")]
REPL_HELP = ("Commands: /like N, /dislike N, /seen N (N = number in the last list), /set KEY=VALUE … (genres, "
             "exclude_genres, year_min, year_max, count; none clears), /reset, /state, /help, /quit. "
             "Anything else is a message.")
SETTABLE = ("genres", "exclude_genres", "year_min", "year_max", "count")


def build_agent(config: Path | None, rerank: bool | None = None, explain: Explain | str | None = None,
                expand: bool | None = None):
    """The agent with CLI flags layered over the config (flags win). On a first run the search index is
    built here, with a progress bar on a terminal (stderr, so `--json` output stays clean)."""
    from retrieval.config import Settings
    from agent.core import RecommenderAgent

    settings = Settings.load(config)
    explain = Explain(explain).value if explain is not None else None
    changes = {k: v for k, v in {"rerank": rerank, "explain": explain, "expand_query": expand}.items() if v is not None}
    if changes:
        settings.agent = settings.agent.model_copy(update=changes)
    agent = RecommenderAgent(settings)
    agent.service.ensure_index(progress=sys.stderr.isatty())
    return agent


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(code)


def _check_ids(session: str, user: str | None) -> None:
    """Exit 2 with one line for a bad --session / --user, before the agent (seconds) is loaded."""
    from agent.validation import InputError, SessionRequest, validate

    try:
        validate(SessionRequest, {"session_id": session, "user_id": user})
    except InputError as exc:
        _fail(str(exc).replace("invalid session_id", "invalid --session").replace("invalid user_id", "invalid --user"))


def _say_error(message: str) -> None:
    typer.secho(f"error: {message}", fg="red", err=True)


def register(app: typer.Typer) -> None:
    @app.command()
    def chat(session: Annotated[str, typer.Option("--session", "-s", help="session id (resumes it)")] = "cli",
             user: Annotated[Optional[str], typer.Option("--user", "-u", help="catalog user id, e.g. 196")] = None,
             config: ConfigOpt = None, rerank: RerankOpt = None, explain: ExplainOpt = None) -> None:
        """Talk to the recommender in the terminal (streams replies; reads piped stdin too)."""
        from rich.console import Console

        console = Console(highlight=False)
        interactive = sys.stdin.isatty()
        _check_ids(session, user)
        if hasattr(sys.stdin, "reconfigure"):
            sys.stdin.reconfigure(errors="replace")  # bytes that are not UTF-8 become U+FFFD, not a crash
        try:
            agent = build_agent(config, rerank, explain)
        except (ValueError, FileNotFoundError, RuntimeError) as exc:  # bad input, missing model
            _fail(str(exc))
        if interactive:
            console.print(f"[bold]Marquee[/bold] — session [cyan]{session}[/cyan]. {REPL_HELP}")
        last: list = []
        failed = 0
        while True:
            try:
                line = console.input("[bold green]you> [/bold green]") if interactive else sys.stdin.readline()
            except (EOFError, KeyboardInterrupt):
                break
            if not interactive and line == "":
                break
            line = line.strip()
            if line in ("/quit", "/exit", "/q"):
                break
            try:
                if line.startswith("/"):
                    last = _command(agent, session, line, last, console)
                    continue
                if not line:
                    continue
                events = agent.stream(line, session_id=session, user_id=user)  # checks the line first
            except ValueError as exc:  # agent.validation.InputError: say what to change, keep talking
                _say_error(str(exc))
                continue
            console.print("[bold blue]marquee>[/bold blue] ", end="")
            try:
                for event in events:
                    if event.kind == "text":
                        console.print(event.text, end="", markup=False, soft_wrap=True)
                    elif event.reply.error:
                        failed += 1
                        _say_error(f"the turn failed ({event.reply.error}); the session is unchanged")
                    else:
                        last = event.items
            except RuntimeError as exc:  # e.g. SessionBusyError: another process is using this session
                failed += 1
                _say_error(str(exc))
            console.print("\n")
        if failed:
            raise typer.Exit(1)

    @app.command()
    def ask(message: Annotated[str, typer.Argument(help="what you want, e.g. 'sci-fi from the 80s'")],
            session: Annotated[str, typer.Option("--session", "-s", help="session id (continues it)")] = "cli",
            user: Annotated[Optional[str], typer.Option("--user", "-u", help="catalog user id, e.g. 196")] = None,
            as_json: Annotated[bool, typer.Option("--json", help="print the reply as JSON")] = False,
            config: ConfigOpt = None, rerank: RerankOpt = None, explain: ExplainOpt = None) -> None:
        """One turn: print the reply (or its JSON: text, items, understood, notes, state)."""
        _check_ids(session, user)
        from agent.validation import ChatRequest, InputError, validate

        try:
            validate(ChatRequest, {"message": message, "session_id": session, "user_id": user})
        except InputError as exc:
            _fail(str(exc))
        try:
            agent = build_agent(config, rerank, explain)
            reply = agent.chat(message, session_id=session, user_id=user)
        except (ValueError, FileNotFoundError, RuntimeError) as exc:  # bad input, missing model
            _fail(str(exc))
        if reply.error:  # the agent answered with an apology: a script must see a failure, not exit 0
            _fail(f"the turn failed ({reply.error}); the session is unchanged", code=1)
        if as_json:
            typer.echo(json.dumps(reply.model_dump(), ensure_ascii=False, indent=2))
        else:
            typer.echo(reply.text)

    @app.command("eval-chat")
    def eval_chat(cases: Annotated[Optional[Path], typer.Option("--cases", help="JSONL conversation set (default: "
                                                                "the public set shipped in agent/data/)")] = None,
                  split: Annotated[SplitChoice, typer.Option("--split", help="tune | test | all (each split reported "
                                                             "on its own)")] = SplitChoice.all,
                  expand: Annotated[Switch, typer.Option("--expand", help="LLM query expansion")] = Switch.off,
                  limit: Annotated[int, typer.Option("--limit", min=0, help="first N cases of each split only "
                                                     "(0 = all)")] = 0,
                  case: Annotated[Optional[list[str]], typer.Option("--case", help="only the case with this id "
                                                                    "(repeatable)")] = None,
                  as_json: Annotated[bool, typer.Option("--json", help="print the figures as JSON")] = False,
                  config: ConfigOpt = None, rerank: RerankOpt = None, explain: ExplainOpt = None) -> None:
        """Replay the public conversation set: constraint satisfaction, titles returned, popularity
        fallbacks, validity, grounding, latency; the tune and test splits reported separately."""
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        from agent.chat_eval import DEFAULT_CASES, SPLITS, evaluate, load_cases

        path = cases or DEFAULT_CASES
        if not path.is_file():
            _fail(f"conversation set not found: {path}")
        try:
            loaded = load_cases(path)
        except ValueError as exc:
            _fail(str(exc))
        if case:
            unknown = sorted(set(case) - {c["id"] for c in loaded})
            if unknown:
                _fail(f"no case {', '.join(map(repr, unknown))} in {path.name}; ids: "
                      f"{', '.join(c['id'] for c in loaded)}")
            loaded = [c for c in loaded if c["id"] in case]
        names = SPLITS if split is SplitChoice.all else (split.value,)
        chosen = {name: [c for c in loaded if c.get("split", "tune") == name] for name in names}
        chosen = {name: (picked[:limit] if limit else picked) for name, picked in chosen.items() if picked or not case}
        try:
            agent = build_agent(config, rerank, explain, expand=expand is Switch.on)
        except (ValueError, FileNotFoundError, RuntimeError) as exc:  # bad input, missing model
            _fail(str(exc))
        console = Console(stderr=as_json)
        reports = {}
        for name, picked in chosen.items():
            with console.status(f"replaying the {name} split…"):
                reports[name] = evaluate(agent, picked)
        figures = {name: {"expand": expand.value, **report.summary()} for name, report in reports.items()}
        if as_json:
            typer.echo(json.dumps({name: {**figures[name], "failures": reports[name].failures} for name in reports},
                                  ensure_ascii=False, indent=2))
            return
        table = Table(title=f"eval-chat ({path.name}, expand {expand.value})")
        table.add_column("figure")
        for name in reports:
            table.add_column(name, justify="right")
        for key in next(iter(figures.values())):
            table.add_row(key, *(str(figures[name][key]) for name in reports))
        console.print(table)
        for name, report in reports.items():
            for failure in report.failures:
                console.print(f"[red]✗[/red] {escape(f'[{name}] {failure}')}", markup=True, highlight=False)


def parse_set(text: str) -> dict:
    """`/set genres=Comedy,Drama year_min=1990 count=none` → keyword arguments of `set_preferences`:
    digits become whole numbers, `none` or nothing clears, genres split at commas; anything else stays
    text, which the agent's validation then names (e.g. "year_min: must be a whole number, got '1990.5'")."""
    edits: dict = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if not sep or key not in SETTABLE:
            raise ValueError(f"/set expects KEY=VALUE with KEY one of {', '.join(SETTABLE)}; got {token[:40]!r}")
        if value.lower() in ("", "none"):
            edits[key] = None
        elif key.endswith("genres"):
            edits[key] = [g.strip() for g in value.split(",") if g.strip()]
        else:
            edits[key] = int(value) if re.fullmatch(r"[+-]?\d{1,4000}", value) else value
    if not edits:
        raise ValueError(f"/set needs at least one KEY=VALUE (keys: {', '.join(SETTABLE)})")
    return edits


def _command(agent, session: str, line: str, last: list, console) -> list:
    """REPL slash commands; returns the (possibly unchanged) last shown items."""
    parts = line.split()
    name, arg = parts[0].lower(), (parts[1] if len(parts) > 1 else "")
    if name == "/help":
        console.print(REPL_HELP)
    elif name == "/reset":
        agent.reset(session)
        console.print("Session reset: preferences and shown items forgotten.")
        return []
    elif name == "/state":
        console.print_json(json.dumps(agent.get_state(session), ensure_ascii=False))
    elif name == "/set":
        state = agent.set_preferences(session, **parse_set(line[len(parts[0]):]))
        shown = {key: state[key] for key in SETTABLE}
        console.print("Saved: " + "; ".join(f"{k} {', '.join(v) if isinstance(v, list) else v}"
                                            for k, v in shown.items() if v not in (None, [])), markup=False)
    elif name in ("/like", "/dislike", "/seen"):
        if not arg.isdecimal() or not 1 <= int(arg) <= len(last):
            console.print(f"Usage: {name} N, where N is 1..{len(last)} from the last list" if last
                          else "Nothing shown yet: ask for recommendations first.")
            return last
        item = last[int(arg) - 1]
        agent.feedback(session, item.item_id, liked=None if name == "/seen" else name == "/like", seen=name == "/seen")
        verb = {"/like": "liked", "/dislike": "disliked", "/seen": "marked as seen"}[name]
        console.print(f"Noted: you {verb} {item.label}.", markup=False)
    else:
        console.print(f"Unknown command {name}. {REPL_HELP}", markup=False)
    return last
