# Two commands do everything on a fresh Debian machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test deps venv lint typecheck pytest bench schemas clean help

help:
	@echo "make demo   set up, then run the station on simulated devices"
	@echo "make test   set up, then run lint, type checks and the whole test suite"
	@echo "make bench  run the benchmarks under bench/"

deps:
	@scripts/debian-deps

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: deps $(STAMP)

demo: venv
	$(VENV)/bin/station demo

lint: venv
	$(VENV)/bin/ruff check station tests bench
	$(VENV)/bin/ruff format --check station tests bench

typecheck: venv
	$(VENV)/bin/mypy

pytest: venv
	$(PY) -m pytest -q

test: venv
	$(VENV)/bin/ruff check station tests bench
	$(VENV)/bin/mypy
	$(PY) -m pytest -q

bench: venv
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

schemas: venv
	$(VENV)/bin/station schemas write

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
