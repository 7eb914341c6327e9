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

.PHONY: demo test test-slurm lint test-clock mutation bench rulegraph docs venv clean

venv: $(STAMP)

# pip byte-compiles the dependencies (~26 s of CPU): kept, because where PYTHONDONTWRITEBYTECODE is
# set (many containers, this development machine) Python would otherwise compile every imported
# module from source again in every process of the test suite.
$(STAMP): requirements.lock requirements-dev.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock \
	  -r requirements-dev.lock $(QUIET_PIP)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . $(QUIET_PIP)
	@touch $(STAMP)

demo: $(STAMP)
	@$(PY) scripts/demo.py

# Files whose tests involve "now" (sessions, ages, run ids, registries): run a second time with
# the clock a year ahead (Debian's faketime), so no test can depend on the date it runs at.
CLOCK_TESTS := tests/cli/test_inspect.py tests/cli/test_paper.py tests/cli/test_forward.py \
	tests/cli/test_portfolio_cli.py tests/unit/test_registry_paper.py tests/unit/test_registry_runs.py \
	tests/unit/test_portfolio.py tests/unit/test_registry_cli.py

# `make lint`'s two checks are tests too (tests/cli/test_workflow_edges.py), so `make test` runs them
# once, inside pytest. `--dist loadgroup`: a module marked `xdist_group` runs on one worker, so its
# module-scoped fixture (a few requests) is made once, not once per worker.
# compileall: the project's own bytecode, written even under PYTHONDONTWRITEBYTECODE (stale files
# only), so the suite's hundreds of fresh processes do not each compile src/ from source.
test: $(STAMP)
	@$(PY) -m compileall -q src
	$(PY) -m pytest -n 2 --dist loadgroup -q -m 'not slurm' tests
	$(PY) scripts/mutation_check.py
	@$(MAKE) --no-print-directory test-clock

# Sweeps through `--profile slurm` on a real SLURM cluster (`scripts/slurm-up.sh up` makes one on
# this machine; .ci/run does). Skipped with the reason when none is reachable, failed instead
# under QUANTLAB_REQUIRE_SLURM=1 (CI).
# Its own venv: the SLURM plugin costs every `import snakemake.api` a `scontrol` call (up to 10 s
# without a controller), so the everyday .venv never has it (requirements-slurm.lock).
SLURM_VENV := .venv-slurm
SLURM_STAMP := $(SLURM_VENV)/.installed

$(SLURM_STAMP): requirements.lock requirements-dev.lock requirements-slurm.lock pyproject.toml
	@test -x $(SLURM_VENV)/bin/python || $(PYTHON) -m venv $(SLURM_VENV) || python3 -m venv $(SLURM_VENV)
	$(SLURM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock \
	  -r requirements-dev.lock -r requirements-slurm.lock $(QUIET_PIP)
	$(SLURM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . $(QUIET_PIP)
	@touch $(SLURM_STAMP)

test-slurm: $(SLURM_STAMP)
	$(SLURM_VENV)/bin/python -m pytest -q -p no:cacheprovider -m slurm --durations=5 tests/cli/test_slurm.py

# The workflow as a Snakemake user sees it: snakefmt's format check and `snakemake --lint` on the
# .test/ configs (config_lint.yaml parses every rule file), each in a throw-away workdir, all in one
# process (scripts/lint_workflow.py: the CLI's --lint call, Snakemake imported once).
LINT_CONFIGS := .test/config_lint.yaml .test/config_run.yaml .test/config_sweep.yaml

lint: $(STAMP)
	$(VENV)/bin/snakefmt --check workflow/
	$(PY) scripts/lint_workflow.py $(LINT_CONFIGS)

test-clock: $(STAMP)
	@if command -v faketime >/dev/null 2>&1; then \
	  echo "clock moved a year ahead: $$(faketime -f '+365d' date -u +%F)"; \
	  faketime -f '+365d' $(PY) -m pytest -n 2 --dist loadgroup -q -p no:cacheprovider -m 'not realclock' $(CLOCK_TESTS); \
	else echo "note: faketime not installed (apt-get install faketime): clock-shifted tests not run"; fi

# Remove each guarded mechanism in turn; its tests must fail (also part of `make test`).
mutation: $(STAMP)
	$(PY) scripts/mutation_check.py

bench: $(STAMP)
	@$(PY) -m compileall -q src
	$(PY) benchmarks/run_all.py

docs: $(STAMP)
	$(PY) scripts/docs_tables.py

rulegraph: $(STAMP)
	$(PY) scripts/rulegraph.py

clean:
	rm -rf outputs/.quantlab outputs/runs outputs/cache outputs/paper_sessions
