# Two commands do everything on a fresh Debian machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The official AsyncAPI parser (npm), installed from a committed lock file into the tests'
# own folder; the suite runs it on docs/asyncapi.yaml (tests/sync/test_asyncapi.py).
NODE_DIR := tests/conformance/asyncapi
NODE_STAMP := $(NODE_DIR)/node_modules/.installed
# A real MLLP HL7 v2 server from another project (npm node-hl7-server), the EHR side of the
# gateway tests (tests/gateway/), installed the same way from its own committed lock file.
MLLP_DIR := tests/conformance/mllp
MLLP_STAMP := $(MLLP_DIR)/node_modules/.installed

.PHONY: demo test deps venv lint typecheck pytest bench schemas catalogs clean help

help:
	@echo "make demo   set up, then run the station on simulated devices"
	@echo "            (make demo GATEWAY=1: through station gateway into an EHR over MLLP)"
	@echo "make test   set up, then run lint, type checks and the whole test suite"
	@echo "make bench  run the benchmarks under bench/"

deps:
	@scripts/debian-deps

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	@cd $(NODE_DIR) && SCARF_ANALYTICS=false npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

$(MLLP_STAMP): $(MLLP_DIR)/package.json $(MLLP_DIR)/package-lock.json
	@cd $(MLLP_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

venv: deps $(STAMP) $(NODE_STAMP) $(MLLP_STAMP)

# `make demo GATEWAY=1`: through `station gateway` into a stand-in EHR over HL7 v2 / MLLP.
demo: venv
	$(VENV)/bin/station demo $(if $(CUFF),--cuff $(CUFF)) $(if $(GATEWAY),--gateway)

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

# Every marked string (babel.cfg) into station/locale/station.pot, merged into each language's
# .po (new ones empty: translate them), then compiled to the .mo the station reads (docs/ui.md).
catalogs: venv
	$(VENV)/bin/pybabel -q extract -F babel.cfg -k N_ --no-location --sort-output \
		--project rooming-station --version 0.1.0 -o station/locale/station.pot .
	$(VENV)/bin/pybabel -q update -i station/locale/station.pot -d station/locale -D station \
		--no-fuzzy-matching --ignore-obsolete -w 100
	$(VENV)/bin/pybabel -q compile -d station/locale -D station

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(NODE_DIR)/node_modules \
		$(MLLP_DIR)/node_modules
