"""`python -m benchmarks.badinput [--quick] [--out DIR]`."""
from benchmarks.cli import main

main("badinput")
