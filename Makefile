# handoff — the two commands: `make demo` (set up everything, run the example mesh end to end)
# and `make test` (set up everything, run every test). `make help` lists the rest.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.handoff-installed

.PHONY: help setup demo test test-fast test-stress schemas schemas-check bench postgres chromium vendor-js clean

help:
	@echo "make demo    set up, then build/validate/compile/publish the example domains and run their DAGs"
	@echo "make test    set up (incl. PostgreSQL and Chromium), then run every test"
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

test: setup postgres chromium
	$(PY) -m pytest

test-fast: setup chromium
	$(PY) -m pytest -m "not airflow_stack"

# RUNS=5 HOGS=<cores> by default; each run's wall time is printed (docs/recovery.md)
test-stress: setup postgres
	$(PY) scripts/test_stress.py --runs $(or $(RUNS),5) $(if $(HOGS),--hogs $(HOGS))

bench: setup
	bench/run.sh

clean:
	rm -rf $(VENV) .demo .handoff build *.egg-info
	find integration_tests tests -name target -o -name dbt_packages -o -name logs | xargs rm -rf
