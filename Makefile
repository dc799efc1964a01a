# The two commands that matter on a fresh machine:
#   make run    set up .venv and serve breachflow on its embedded default (SQLite + key file in ./var)
#   make test   set up .venv with the dev extra and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test quick mutate mutate-map screenshots bench bench-load bench-scale bench-pages diagram clean

$(BIN)/breachflow: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

run: $(BIN)/breachflow
	$(BIN)/breachflow serve

# The browser tests drive Debian's Chromium (Playwright through executable_path, no browser download).
CHROMIUM ?= /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

test: $(BIN)/breachflow $(CHROMIUM)
	$(BIN)/pytest -n auto --dist worksteal

# the suite without its slow tier (real processes, the installed wheel, fuzzing) and the browser tests:
# the loop to run while working; `make test` runs everything, as CI does
quick: $(BIN)/breachflow
	$(BIN)/pytest -n auto --dist worksteal -m "not slow and not browser"

# mutation testing of the modules that hold the rules (tests/mutation); MUTATE=guards runs one group
# of tests/mutation/groups.toml
mutate: $(BIN)/breachflow
	$(BIN)/python tests/mutation/run.py $(MUTATE)

# every row of docs/compliance.md checked by mutation: a mutant of its rule fails a test it cites
mutate-map: $(BIN)/breachflow
	$(BIN)/python tests/mutation/run.py --compliance --rows all

# the browser tests write the pictures shown in the README
screenshots: $(BIN)/breachflow $(CHROMIUM)
	BREACHFLOW_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q -m browser

bench: $(BIN)/breachflow
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/notify.py

# reads and the reminder scanner at 1,000 and at 50,000 incidents (several minutes)
bench-scale: $(BIN)/breachflow
	$(BIN)/python bench/scale.py

# the dashboard's first page at 100 and at 10,000 incidents in progress (about two minutes)
bench-pages: $(BIN)/breachflow
	$(BIN)/python bench/pages.py

# two API processes and a worker on the local PostgreSQL (a scratch database, dropped afterwards)
bench-load: $(BIN)/breachflow
	$(BIN)/python bench/load.py

diagram: $(BIN)/breachflow
	$(BIN)/breachflow diagram

clean:
	rm -rf $(VENV) var .pytest_cache
