# The two README commands are `make demo` and `make test`; everything else here serves them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# OpenStack Glance for the openstack target's tests and the demo, in a venv of its own: its pinned
# oslo/SQLAlchemy stack must not meet fedimg's (standins/glance.py runs it)
GLANCE_VENV := .glance-venv
PYTEST_ARGS ?=

.PHONY: test test-fast demo demo-stop system services venv glance-venv lint bench

## make test: system packages, running services, the venv, ruff, then the whole suite (slow tests too)
test: system services venv glance-venv lint
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

glance-venv: $(GLANCE_VENV)/.installed

$(GLANCE_VENV)/.installed: deploy/local/glance-requirements.txt
	test -x $(GLANCE_VENV)/bin/python || $(PYTHON) -m venv $(GLANCE_VENV)
	$(GLANCE_VENV)/bin/pip install -q --disable-pip-version-check -r deploy/local/glance-requirements.txt
	touch $@

system:
	bash deploy/local/ensure-system.sh

services: system
	bash deploy/local/ensure-services.sh

## make demo: system packages, running services, the venv, then the whole pipeline on a local stack
## (deploy/local/demo.py; docs/deployment.md). Safe to run again: it reuses the stack.
demo: system services venv glance-venv
	$(BIN)/python deploy/local/demo.py

## make demo-stop: stop every process of the demo stack by its PID (state stays in $$FEDIMG_DEMO_DIR)
demo-stop:
	$(BIN)/python deploy/local/stack.py down

## make bench: list the benchmarks (each is run by hand; docs/benchmarks.md has figures)
bench: venv
	@for b in bench/*.py; do echo "$(BIN)/python $$b"; done
