# hnlab: `make run` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST := $(PY) -m pytest -p no:cacheprovider

.PHONY: install run demo lint typecheck unit notebooks test test-db clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)  ## create .venv if missing and install hnlab with its dev tools

run: install  ## charts from an offline demo first (once), then the hourly runner
	@test -f reports/index.html || $(VENV)/bin/hnlab --data-dir data/demo demo --hours 48 --out reports
	$(VENV)/bin/hnlab run

demo: install  ## 48 simulated hours, offline, into data/demo, then HTML reports
	$(VENV)/bin/hnlab --data-dir data/demo demo --hours 48 --out reports

lint: install
	$(VENV)/bin/ruff check hnlab tests scripts
	$(VENV)/bin/ruff format --check hnlab tests scripts

typecheck: install
	$(VENV)/bin/mypy

unit: install
	$(PYTEST) --durations=12 tests

notebooks: install
	$(PYTEST) --nbval-lax --sanitize-with tests/nbval_sanitize.cfg notebooks

test: lint typecheck unit notebooks  ## the whole suite: lint, types, tests, notebooks

test-db: install  ## only the tests that use PostgreSQL (CI runs them again over TCP)
	$(PYTEST) -m db tests

clean:
	rm -rf $(VENV) build *.egg-info
