# grprof: every target sets up what it needs, idempotently.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.grprof-installed
NATIVE := $(wildcard native/src/*.rs) native/Cargo.toml

.PHONY: all demo test lint typecheck unit fixtures bench clean

all: test

$(STAMP): pyproject.toml $(NATIVE)
	@scripts/system-deps.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

install: $(STAMP)

demo: $(STAMP)
	@scripts/demo.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict src

# Tests that assert a schedule run on their own, so the other tests' load cannot skew them.
unit: $(STAMP)
	$(VENV)/bin/pytest -n 2 -q -m "not timing"
	$(VENV)/bin/pytest -q -m timing

test: lint typecheck unit

fixtures: $(STAMP)
	scripts/record-fixtures.sh

bench: $(STAMP)
	$(PY) benchmarks/parse.py

clean:
	rm -rf $(VENV) build native/target src/grprof/_native*.so .pytest_cache .mypy_cache .ruff_cache
