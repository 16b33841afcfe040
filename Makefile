# nurture — the two commands that matter: `make demo` and `make test`. Both work from nothing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test install lint typecheck imports unit migration bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/nurture demo

lint: install
	$(VENV)/bin/ruff check nurture_tui tests scripts

typecheck: install
	$(VENV)/bin/mypy nurture_tui

imports: install
	$(VENV)/bin/lint-imports

unit: install
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

test: lint typecheck imports unit

migration: install
	$(PY) scripts/regen_initial_migration.py

bench: install
	$(VENV)/bin/nurture bench import --json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
