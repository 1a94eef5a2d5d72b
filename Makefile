# grprof: every target sets up what it needs, idempotently.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.grprof-installed
RUNTIME := $(VENV)/.grprof-runtime
WHEELHOUSE := .wheelhouse
NATIVE := $(wildcard native/src/*.rs) native/Cargo.toml
PIPQ := -q --disable-pip-version-check

.PHONY: all install demo test lint typecheck unit system-deps wheel wheelhouse lock fixtures bench clean

all: test

# The development install: grprof editable with the dev tools. maturin's editable build compiles
# the native scanner (release profile) and writes it to src/grprof/_native.abi3.so, where
# `import grprof._native` finds it; any older src/grprof/_native*.so is removed first, so none
# can shadow the fresh one (Python prefers a _native.cpython-311-*.so to an .abi3.so).
$(STAMP): pyproject.toml $(NATIVE)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIPQ) --upgrade pip
	rm -f src/grprof/_native*.so
	$(PY) -m pip install $(PIPQ) -e '.[dev]'
	@touch $@ $(RUNTIME)

install: $(STAMP)

# What `make demo` needs: grprof and its locked runtime dependencies, no dev tools, no root.
# With cargo, grprof editable with the native scanner; without it, the pure-Python scanner:
# src/ on the venv's path (a .pth) and a `grprof` launcher. PIP_NO_INDEX=1 PIP_FIND_LINKS=.wheelhouse
# makes it offline.
$(RUNTIME): pyproject.toml requirements.lock $(NATIVE)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if command -v cargo >/dev/null; then \
	  rm -f src/grprof/_native*.so $$($(PY) -c 'import site; print(site.getsitepackages()[0])')/grprof-src.pth; \
	  $(PY) -m pip install $(PIPQ) -r requirements.lock -e . ; \
	else \
	  echo "install: no cargo: grprof without its native scanner (pure Python, slower on big dumps)"; \
	  $(PY) -m pip install $(PIPQ) -r requirements.lock && \
	  echo "$(CURDIR)/src" > $$($(PY) -c 'import site; print(site.getsitepackages()[0])')/grprof-src.pth && \
	  printf '#!%s\nimport sys\nfrom grprof.cli import main\nsys.exit(main())\n' "$(CURDIR)/$(PY)" > $(VENV)/bin/grprof && \
	  chmod +x $(VENV)/bin/grprof; \
	fi
	@touch $@

demo: $(RUNTIME)
	@scripts/demo.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict src

# The Debian packages some tests use for real (as root; otherwise they skip): only for the tests.
system-deps:
	@scripts/system-deps.sh

# The release wheel: dist/grprof-<version>-cp311-abi3-manylinux_<glibc>_x86_64.whl, the native
# scanner inside (maturin picks the manylinux tag from the glibc symbols it uses). `pip wheel .`
# would tag it linux_x86_64, which PyPI refuses: use this.
wheel: $(STAMP)
	rm -f dist/grprof-*.whl
	$(VENV)/bin/maturin build --release --out dist
	@ls dist/grprof-*.whl

# The locked runtime dependencies as wheels, for offline installs:
#   python3.11 -m venv v && v/bin/pip install --no-index --find-links .wheelhouse dist/grprof-*.whl
wheelhouse: $(WHEELHOUSE)/.complete
$(WHEELHOUSE)/.complete: requirements.lock | $(STAMP)
	$(PY) -m pip download $(PIPQ) --only-binary=:all: -r requirements.lock -d $(WHEELHOUSE)
	$(PY) -m pip download $(PIPQ) --only-binary=:all: --no-deps -d $(WHEELHOUSE) "maturin>=1.7,<2"
	@touch $@

# Re-resolve requirements.lock from pyproject.toml's dependencies (commit the result).
lock: $(STAMP)
	$(VENV)/bin/pip-compile -q --strip-extras --no-emit-index-url --no-emit-find-links \
	  --output-file=requirements.lock pyproject.toml

# Tests that assert a schedule run on their own, so the other tests' load cannot skew them.
# tests/test_first_hour.py installs the wheel offline from the wheelhouse: both are built first.
unit: $(STAMP) system-deps wheel wheelhouse
	$(VENV)/bin/pytest -n 2 -q -m "not timing"
	$(VENV)/bin/pytest -q -m timing

test: lint typecheck unit

fixtures: $(STAMP)
	scripts/record-fixtures.sh

bench: $(STAMP)
	$(PY) benchmarks/parse.py

clean:
	rm -rf $(VENV) build dist $(WHEELHOUSE) native/target src/grprof/_native*.so src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
