# handoff — the two commands: `make demo` (set up everything, run the example mesh end to end)
# and `make test` (set up everything, run every test). `make help` lists the rest.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.handoff-installed
# the gates' tools live apart: in .venv, mypy would upgrade a package dbt pins (requirements-lint.txt)
LINT_VENV ?= .venv-lint
LINT_STAMP := $(LINT_VENV)/.handoff-lint-installed
# what the gates check (a test points them at a scratch folder to prove they fail)
LINT_SRC ?= python/handoff

.PHONY: help setup lint-setup lint demo test test-fast test-stress schemas schemas-check bench postgres chromium vendor-js clean

help:
	@echo "make demo    set up, then build/validate/compile/publish the example domains and run their DAGs"
	@echo "make test    set up (incl. PostgreSQL and Chromium), run the gates (make lint), then every test"
	@echo "make lint    the gates: ruff check and mypy --strict on python/handoff (configs in pyproject.toml)"
	@echo "make test-stress  the end-to-end tests (real Airflow stacks) 5 times in a row under a CPU hog"
	@echo "make bench   set up, then run the benchmark suite (docs/benchmarks.md)"
	@echo "make schemas regenerate the dbt macros' copy of schemas/meta.schema.json"
	@echo "make vendor-js refresh the vendored JS graph library (python/handoff/ui/static/vendor/, from npm)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[airflow,dbt,mesh,postgres,test]'
	touch $(STAMP)

setup: $(STAMP)

$(LINT_STAMP): requirements-lint.txt
	$(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/pip install --quiet --upgrade pip
	$(LINT_VENV)/bin/pip install --quiet -r requirements-lint.txt
	touch $(LINT_STAMP)

lint-setup: $(LINT_STAMP)

# both gates run and print everything, then the target fails if either found something;
# mypy runs from .venv-lint but resolves imports (Airflow, dbt, SQLAlchemy, stubs) in .venv
lint: setup lint-setup
	@status=0; \
	echo "ruff check $(LINT_SRC)"; $(LINT_VENV)/bin/ruff check --config pyproject.toml $(LINT_SRC) || status=1; \
	echo "mypy --strict $(LINT_SRC)"; $(LINT_VENV)/bin/mypy --python-executable $(PY) $(LINT_SRC) || status=1; \
	exit $$status

postgres:
	@scripts/ensure-postgres.sh

chromium:
	@scripts/ensure-chromium.sh

vendor-js:
	scripts/vendor-js.sh

schemas: setup
	$(PY) scripts/gen_macro_schema.py

schemas-check: setup
	$(PY) scripts/gen_macro_schema.py --check

demo: setup
	$(PY) integration_tests/demo.py

test: setup lint postgres chromium
	$(PY) -m pytest

test-fast: setup chromium
	$(PY) -m pytest -m "not airflow_stack"

# RUNS=5 HOGS=<cores> by default; each run's wall time is printed (docs/recovery.md)
test-stress: setup postgres
	$(PY) scripts/test_stress.py --runs $(or $(RUNS),5) $(if $(HOGS),--hogs $(HOGS))

bench: setup
	bench/run.sh

clean:
	rm -rf $(VENV) $(LINT_VENV) .mypy_cache .ruff_cache .demo .handoff build *.egg-info
	find integration_tests tests -name target -o -name dbt_packages -o -name logs | xargs rm -rf
