"""`marquee bench` (the benchmarks package's entry-point command): where figures are recorded. The
benchmarks themselves measure time, so they run by hand (`marquee bench NAME`), never in the suite."""
from __future__ import annotations

import json
import pkgutil
import sys
import types
from pathlib import Path

from typer.testing import CliRunner

import benchmarks
from agent.cli import build
from benchmarks import harness
from benchmarks.cli import Benchmark


def test_every_benchmark_module_is_a_choice():
    modules = {m.name for m in pkgutil.iter_modules(benchmarks.__path__)
               if m.name not in ("cli", "harness") and not m.name.endswith("_driver")}  # plumbing, not benchmarks
    assert modules == {b.value for b in Benchmark}
    assert all(callable(getattr(__import__(f"benchmarks.{m}", fromlist=["run"]), "run")) for m in modules)


def test_bench_records_into_out_and_prints_the_figures(tmp_path, monkeypatch):
    fake = types.ModuleType("benchmarks.index")
    fake.run = lambda quick=False: {"items_per_s": 123.4, "quick": quick}
    fake.TARGETS = {"items_per_s": "≥ 200"}
    monkeypatch.setitem(__import__("sys").modules, "benchmarks.index", fake)
    before = {p: p.stat().st_mtime_ns for p in (Path(benchmarks.__file__).parent / "results").glob("*")}
    result = CliRunner().invoke(build(), ["bench", "index", "--quick", "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"items_per_s": 123.4, "quick": True}
    saved = json.loads((tmp_path / "b" / "index.json").read_text())
    assert saved["figures"]["items_per_s"] == 123.4 and saved["targets"] == fake.TARGETS
    assert "| items_per_s | 123.4 | ≥ 200 |" in (tmp_path / "b" / "RESULTS.md").read_text()
    after = {p: p.stat().st_mtime_ns for p in (Path(benchmarks.__file__).parent / "results").glob("*")}
    assert after == before  # --out given: the checkout's results are untouched


def test_default_results_folder_is_the_checkout_or_marquee_home(tmp_path, monkeypatch):
    assert harness.in_checkout()  # the suite runs from the source checkout (editable install)
    assert harness.default_results_dir() == harness.CHECKOUT_RESULTS
    assert harness.results_md_for(harness.CHECKOUT_RESULTS) == harness.BENCH_DIR / "RESULTS.md"
    # an installed copy: benchmarks/ sits in site-packages, without pyproject.toml beside it
    site = tmp_path / "site-packages" / "benchmarks"
    monkeypatch.setattr(harness, "BENCH_DIR", site)
    monkeypatch.setattr(harness, "CHECKOUT_RESULTS", site / "results")
    monkeypatch.setenv("MARQUEE_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert not harness.in_checkout()
    assert harness.default_results_dir() == tmp_path / "home" / "bench"
    assert harness.results_md_for(tmp_path / "home" / "bench") == tmp_path / "home" / "bench" / "RESULTS.md"


def test_minutes_reach_the_soak_benchmark_and_only_it(tmp_path, monkeypatch):
    fake = types.ModuleType("benchmarks.soak")
    fake.run = lambda quick=False, minutes=None: {"minutes": minutes, "quick": quick}
    monkeypatch.setitem(__import__("sys").modules, "benchmarks.soak", fake)
    result = CliRunner().invoke(build(), ["bench", "soak", "--minutes", "0.5", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"minutes": 0.5, "quick": False}
    wrong = CliRunner().invoke(build(), ["bench", "index", "--minutes", "2", "--out", str(tmp_path)])
    assert wrong.exit_code == 2 and "--minutes applies to soak only" in wrong.stderr


def test_a_run_records_the_command_that_started_it(monkeypatch):
    from benchmarks.harness import _command

    monkeypatch.setattr(sys, "argv", ["/usr/bin/marquee", "bench", "explain", "--quick"])
    assert _command() == "marquee bench explain --quick"
    monkeypatch.setattr(sys, "argv", ["/tmp/some-checkout/benchmarks/explain.py", "--quick"])
    assert _command() == "python -m benchmarks.explain --quick"  # the module, not the checkout's path
