"""Performance scripts, installed with Marquee: `marquee bench NAME` (benchmarks/cli.py, joined to the CLI through
the `marquee.commands` entry point) runs benchmarks/NAME.py's `run(quick) -> dict` and records the figures.
`web_driver` drives the real chat page in Chromium, for `bench web` and the browser tests."""
