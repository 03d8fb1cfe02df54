"""Performance scripts: `marquee bench NAME` runs benchmarks/NAME.py (its `run(args) -> dict`)."""
