# `make run`: set up a virtualenv and run the agent on the embedded default config,
# keeping its state under ./var. `make test`: set up and run the whole test suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/monitord run -c etc/monitord/monitord.toml --state-dir var/lib/monitord

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check monitord tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/http_sweep.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
