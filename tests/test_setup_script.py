"""scripts/setup.sh (`make setup`) checks for Python >= 3.11 and a working `python -m venv` before installing
anything, and prints the exact command that fixes what is missing. Stand-in interpreters play the broken cases."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

OLD_PYTHON = """#!/bin/bash
if [[ "$1" == "-c" && "$2" == *sys.exit* ]]; then exit 1; fi
if [[ "$1" == "-c" ]]; then echo 3.9.2; fi
"""
NO_VENV = """#!/bin/bash
if [[ "$1" == "-m" && "$2" == "venv" ]]; then echo "ensurepip is not available" >&2; exit 1; fi
exec python3 "$@"
"""


def setup_with(python: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "VENV": str(tmp_path / "venv"), "PYTHON": python}
    return subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh")], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("script, message", [
    (OLD_PYTHON, "is Python 3.9.2: Marquee needs 3.11 or newer. Fix: sudo apt-get install python3.11 python3.11-venv"),
    (NO_VENV, "-m venv does not work (Debian and Ubuntu ship it separately). Fix: sudo apt-get install python3."),
])
def test_setup_names_the_fix_for_an_unusable_python(tmp_path, script, message):
    fake = tmp_path / "python-stand-in"
    fake.write_text(script)
    fake.chmod(0o755)
    result = setup_with(str(fake), tmp_path)
    assert result.returncode == 1
    assert message in result.stderr
    assert not (tmp_path / "venv").exists()  # nothing was installed


def test_setup_names_the_fix_when_python_is_missing(tmp_path):
    result = setup_with("python3-that-does-not-exist", tmp_path)
    assert result.returncode == 1 and "not found. Fix: sudo apt-get install python3 python3-venv" in result.stderr
