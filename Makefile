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

.PHONY: setup demo test test-fast browser-deps services-deps
# pytest-xdist workers; each has its own session home (index, converted model), so more workers cost memory
TEST_WORKERS ?= 2
setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/bin/marquee serve

browser-deps:
	@bash scripts/browser_deps.sh

# Debian's PostgreSQL and nginx for the scale-out tests (tests/cluster start their own instances on 127.0.0.1)
services-deps:
	@bash scripts/services_deps.sh

# Two steps: the suite from the checkout (one test file per worker at a time: module fixtures stay in one
# process), then the installed wheel in a fresh venv (tests/packaging).
test: setup browser-deps services-deps
	$(PY) -m pytest -q -ra -m "not wheel" -n $(TEST_WORKERS) --dist loadfile
	$(PY) -m pytest -q -ra -m wheel tests/packaging

# The inner loop: everything but the real-LLM training runs, the browser, the cluster and the wheel.
test-fast: setup
	$(PY) -m pytest -q -ra -m "not slow and not browser and not cluster and not wheel" -n $(TEST_WORKERS) --dist loadfile
