# Each target creates .venv on first use and installs the host and the channel plugins.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench screenshots mutate clean

$(STAMP): pyproject.toml plugins/backmarket_pro/pyproject.toml plugins/backmarket/pyproject.toml plugins/amazon_sp/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,postgresql]' -e plugins/backmarket_pro -e plugins/backmarket \
		-e 'plugins/amazon_sp[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cartplugin backmarket-pro demo

# Two (or more) processes of tests at once (pytest-xdist), a test file at a time each: docs/testing.md.
test: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist loadfile

# The quality gate CI runs before the tests (docs/testing.md): formatting, lint, types; zero findings.
$(VENV)/.lint-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[lint]'
	touch $@

lint: $(VENV)/.lint-installed
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

# The support guide's screenshots, taken again by the browser walk (a plain test run leaves them in build/).
screenshots: $(STAMP)
	CARTPLUGIN_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q tests/web -k browser

# Mutation testing, on demand only (not CI): docs/testing.md says how to read the outcome.
# Each plugin's mapping.py from the plugin's own folder, then the host's and the toolkit's runs
# (mutate/run.py: one folder per module under mutate/, a kill ratio per module at the end).
MUTATE_JOBS ?= 2
# `make mutate MUTATE_RUNS="jobs secrets" MUTATE_SAMPLE=150`: some runs, a sample of each module
MUTATE_RUNS ?=
MUTATE_SAMPLE ?=
MUTMUT := $(abspath $(BIN))/mutmut
$(VENV)/.mutate-installed: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,mutate]'
	touch $@

mutate: $(VENV)/.mutate-installed
	cd plugins/backmarket_pro && $(MUTMUT) run --max-children $(MUTATE_JOBS)
	cd plugins/backmarket && $(MUTMUT) run --max-children $(MUTATE_JOBS)
	@for dir in plugins/backmarket_pro plugins/backmarket; do \
		echo "== surviving mutants in $$dir (mutmut show NAME, from that folder, prints the change)"; \
		(cd $$dir && $(MUTMUT) results); \
	done
	MUTATE_JOBS=$(MUTATE_JOBS) $(BIN)/python mutate/run.py $(MUTATE_RUNS) $(if $(MUTATE_SAMPLE),--sample $(MUTATE_SAMPLE))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache mutants plugins/*/mutants mutate/*/mutants build
