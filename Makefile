# Developer shortcuts. `make test` is the README's test command; CI (.ci/run) runs the same.
.PHONY: install test lint serve bench bench-quick

VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

install:
	python3 -m venv $(VENV) && $(BIN)/pip install -q -e '.[dev]'

test:
	python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' && .venv/bin/python -m pytest

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy mandate

# SQLite (./mandate.db) unless MANDATE_DATABASE_URL says otherwise.
serve:
	$(BIN)/mandate serve --host $(HOST) --port $(PORT)

# Every benchmark, then one table of the headline figures (each module's output in a log).
bench:
	$(BIN)/python -m tests.bench

bench-quick:
	$(BIN)/python -m tests.bench --quick
