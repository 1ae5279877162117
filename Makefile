# The two README commands are `make demo` and `make test`; everything else here serves them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: test test-fast demo system services venv lint bench

## make test: system packages, running services, the venv, ruff, then the whole suite (slow tests too)
test: system services venv lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make test-fast: only the tests that need no real stack (for quick local iterations)
test-fast: venv
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -U pip 'setuptools>=75,<81' wheel
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

system:
	bash deploy/local/ensure-system.sh

services: system
	bash deploy/local/ensure-services.sh

demo:
	@echo "make demo: not yet available - the end-to-end demo on the local stack arrives with issue 8" >&2
	@exit 1

bench: venv
	@echo "benchmarks: see README, section Benchmarks" >&2
