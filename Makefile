# One-command entry points. Everything a fresh Debian machine (as root) needs
# is installed here: Python dependencies, git-annex (from PyPI), and the
# local single-node Slurm cluster (tools/local-slurm).
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
PYTEST_ARGS ?=
# The test and benchmark cluster offers more CPUs than the machine has, so
# that many tiny jobs run at once instead of queueing (tools/local-slurm).
export LOCAL_SLURM_CPUS ?= 16

.PHONY: setup deps install cluster cluster-stop test unit demo demo-model demo-slurm demo-job docs lint bench bench-compare robustness

setup: deps install cluster

# git, and Debian's Chromium, which renders slurm-report's page in the tests
# (tests/local/test_report.py).
deps:
	@missing=""; command -v git >/dev/null || missing="git"; \
	  command -v chromium >/dev/null || missing="$$missing chromium"; \
	  if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ]; then \
	    apt-get update && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y --no-install-recommends $$missing; \
	  elif [ -n "$$missing" ]; then echo "missing: $$missing (run make deps as root)"; fi

install:
	$(PIP) install --quiet --disable-pip-version-check -e '.[devel,containers,report]'
	@git annex version --raw >/dev/null || { echo "git-annex is not usable"; exit 1; }

cluster:
	tools/local-slurm start

cluster-stop:
	tools/local-slurm stop

test: setup
	$(PYTHON) -m pytest -ra $(PYTEST_ARGS)

# Tests that need no cluster: tests/unit and the local backend's tests/local.
unit: install
	$(PYTHON) -m pytest -ra tests/unit tests/local $(PYTEST_ARGS)

# slurm-init, check, sweep, report on the embedded local backend: needs no
# cluster and no root; prints where the report is.
demo: deps install
	tools/demo

# The older walk-through: the example model swept, one point replayed.
demo-model: deps install
	tools/demo-model local

# The same project on the local Slurm cluster.
demo-slurm: setup
	tools/demo slurm

# One job: schedule, finish, show the record, reschedule (on the cluster).
demo-job: setup
	tools/demo-job

docs: install
	$(PYTHON) tools/gen-cli-docs
	$(PYTHON) -m sphinx -q -b html docs docs/_build/html

lint: install
	ruff check datalad_slurmsweep tests

# Benchmarks against datalad-slurm 0.2.8 on the local cluster, and issue 11's
# scale targets (not part of make test): writes docs/benchmarks.md, .png and
# .json. BENCH_ARGS=--quick for development (sweeps capped at 10 000 points);
# BENCH_ARGS=--slurm-100k (or BENCH_SLURM_100K=1) adds the 100 000-point
# sweep on the cluster; python bench/run.py --help lists the rest.
bench: setup
	$(PIP) install --quiet --disable-pip-version-check matplotlib
	$(PYTHON) bench/run.py $(BENCH_ARGS)

# The robustness suite (tests/robustness): bad inputs, kill -9, concurrent
# finishes, racing commits, store and Slurm faults, secrets; writes
# docs/robustness.md. A small sample runs under make test.
robustness: setup
	$(PYTHON) -m tests.robustness.run --report docs/robustness.md

# Our own phases at revision BASE against the work tree, interleaved on the
# same cluster (bench/compare.py); fails when a phase is >10 % slower.
BASE ?= HEAD~1
bench-compare: setup
	rm -rf .bench/base && git worktree prune && mkdir -p .bench
	git worktree add --detach -f .bench/base $(BASE)
	cd bench && $(PYTHON) compare.py ../.bench/base .. $(COMPARE_ARGS)
