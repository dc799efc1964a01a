# The two commands that matter on a fresh machine:
#   make run    set up .venv and start breachflow on its embedded default (SQLite + key file in ./var)
#   make test   set up .venv with the dev extra and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test bench diagram clean

$(BIN)/breachflow: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

run: $(BIN)/breachflow
	$(BIN)/breachflow init
	@echo
	$(BIN)/breachflow deadlines
	@echo
	@echo "breachflow is ready on ./var (SQLite). Try: $(BIN)/breachflow --help"

test: $(BIN)/breachflow
	$(BIN)/pytest

bench: $(BIN)/breachflow
	$(BIN)/python bench/engine.py

diagram: $(BIN)/breachflow
	$(BIN)/breachflow diagram

clean:
	rm -rf $(VENV) var .pytest_cache
