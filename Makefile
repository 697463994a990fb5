# The two commands a newcomer needs: `make demo` (serve the Mikkeli demo on SQLite) and
# `make test` (lint, types and the whole test suite on SQLite and PostgreSQL).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test test-at lint pytest bench clean

$(BIN)/booking: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/booking

demo: $(BIN)/booking
	$(BIN)/booking demo load --if-empty
	$(BIN)/booking serve

test: lint pytest

lint: $(BIN)/booking
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

pytest: $(BIN)/booking
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

# The suite with the machine's clock somewhere else (libfaketime, built by its PyPI package):
# make test-at INSTANT="2027-03-28 00:30:00"   (UTC; the clock ticks on from there)
FAKETIME_LIB = $(shell $(BIN)/python -c 'from tests.conftest import libfaketime; print(libfaketime())' 2>/dev/null)
test-at: $(BIN)/booking
	TZ=UTC FAKETIME_DONT_FAKE_MONOTONIC=1 FAKETIME="@$(INSTANT)" LD_PRELOAD=$(FAKETIME_LIB) \
	  $(BIN)/pytest -n 2 $(PYTEST_ARGS)

bench: $(BIN)/booking
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
