# Two commands for a newcomer: `make demo` and `make test`. Both bootstrap .venv first
# (idempotent: reinstalls only when requirements.lock or pyproject.toml change).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# pip prints one warning per unreachable index location configured on some machines; hide only those
QUIET_PIP := 2>&1 | { grep -v "^WARNING: Location '.*' is ignored" || true; }

.PHONY: demo test bench rulegraph venv clean

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock $(QUIET_PIP)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . $(QUIET_PIP)
	@touch $(STAMP)

demo: $(STAMP)
	@$(PY) scripts/demo.py

test: $(STAMP)
	$(PY) -m pytest -n 2 -q tests

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

rulegraph: $(STAMP)
	$(PY) scripts/rulegraph.py

clean:
	rm -rf outputs/.quantlab outputs/runs outputs/cache outputs/paper_sessions
