# The README's two commands: `make demo` (set up + start the chat page) and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export ANONYMIZED_TELEMETRY := False
export TOKENIZERS_PARALLELISM := false
# torch's OpenMP spin-waiting costs ~10x CPU per small query on a busy 2-core machine
export OMP_WAIT_POLICY := PASSIVE

.PHONY: setup demo test browser-deps services-deps
setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/bin/marquee serve

browser-deps:
	@bash scripts/browser_deps.sh

# Debian's PostgreSQL and nginx for the scale-out tests (tests/cluster start their own instances on 127.0.0.1)
services-deps:
	@bash scripts/services_deps.sh

# Two steps: the suite from the checkout, then the installed wheel in a fresh venv (tests/packaging).
test: setup browser-deps services-deps
	$(PY) -m pytest -q -ra -m "not wheel"
	$(PY) -m pytest -q -ra -m wheel tests/packaging
