# PIDS developer entry points. The e2e targets build everything they need
# without a container registry; see e2e/README.md.
SHELL := /bin/bash
E2E := e2e

.PHONY: images toolchain node-image cluster cluster-down e2e

images:        ## build pids-worker, pids-operator, pids-redis (tags = project version)
	$(E2E)/images.sh

toolchain:     ## build Kubernetes, etcd, coredns, crictl, kind, helm into the cache
	$(E2E)/toolchain.sh

node-image:    ## build the kind node image offline
	$(E2E)/node-image.sh

cluster:       ## single-node kind cluster with the PIDS images loaded; prints KUBECONFIG
	$(E2E)/cluster-up.sh

cluster-down:  ## delete the e2e cluster
	$(E2E)/cluster-down.sh

e2e:           ## cluster + pytest -m e2e
	$(E2E)/run.sh

.PHONY: demo deps dev test test-fast test-lowest lowest-venv lint lock version

# The exact versions the images and CI install; pyproject.toml holds the ranges.
LOCK := requirements/lock.txt
# A venv with the lowest versions pyproject.toml allows (uv's lowest-direct resolution).
LOWEST_VENV ?= .venv-lowest
UV := python3 -m uv

demo:          ## install PIDS with its embedded Redis and run the local demo
	python3 -m pip install -q -c $(LOCK) -e '.[embedded]'
	pids demo

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
deps:          ## Debian's redis-server and redis-sentinel 7.0 for the Sentinel tests (their services are not left running)
	@command -v redis-sentinel >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends redis-server redis-sentinel >/dev/null && \
	  { ! command -v systemctl >/dev/null || $(SUDO) systemctl disable --now redis-server redis-sentinel >/dev/null 2>&1 || true; }; }

dev: deps      ## install PIDS and pids-bench (bench/) editable with every extra, at the locked versions; Debian's Redis (deps)
	python3 -m pip install -q -c $(LOCK) -e '.[dev]' -e ./bench

test-fast: dev ## unit + integration tests (a real redis-server, and Sentinel sets, are started by the fixtures)
	python3 -m pytest -q tests

# what the lowest versions are checked with, in the time CI has: the pure logic, the protocol on a
# real redis-server (redis-py, hiredis) and the operator's Redis side (kopf); the rest at the lock
LOWEST_TESTS := tests/unit tests/integration/test_protocol.py tests/integration/test_operator_redis.py \
  tests/integration/test_operator_redis_loss.py

LOWEST_PYTEST := env -u PYTHONPATH $(LOWEST_VENV)/bin/python -m pytest -q -p no:cacheprovider $(LOWEST_TESTS)

lowest-venv:   ## the venv of test-lowest: the lowest versions pyproject.toml allows
	$(UV) venv -q --allow-existing --python python3 $(LOWEST_VENV)
	$(UV) pip install -q --python $(LOWEST_VENV)/bin/python --resolution lowest-direct -e '.[dev]' -e ./bench
	$(UV) pip list --python $(LOWEST_VENV)/bin/python | grep -iE '^(redis|hiredis|numpy|prometheus-client|rich|kopf|kubernetes|pyyaml|matplotlib) '

test-lowest: dev lowest-venv ## unit tests and the library-facing integration tests again, in $(LOWEST_VENV) with the lowest versions allowed
	$(LOWEST_PYTEST)

lint: dev      ## ruff (rules and format) on everything, mypy --strict on pids and pids_operator
	ruff check .
	ruff format --check .
	mypy

# The e2e tests mostly wait on the cluster, so the lowest-version tests run beside them (their
# output is printed when both are done); everything else runs one part at a time.
test: dev lint lowest-venv ## lint; the whole suite: unit, integration (real redis-server), e2e (real cluster built offline) and, beside e2e, unit + integration at the lowest versions
	@mkdir -p $(E2E)/.work; rc=0; \
	$(E2E)/cluster-up.sh >/dev/null || rc=1; \
	python3 -m pytest -q --durations=10 tests || rc=1; \
	$(LOWEST_PYTEST) >$(E2E)/.work/test-lowest.log 2>&1 & lowest=$$!; \
	$(E2E)/run.sh -q --durations=15 e2e || rc=1; \
	wait $$lowest || rc=1; \
	echo "== unit + integration at the lowest versions ($(LOWEST_VENV)):"; cat $(E2E)/.work/test-lowest.log; \
	exit $$rc

version:       ## write pids.__version__ (worker/pids/__init__.py, the one place) into the charts, e2e/versions.sh, examples
	v="$$(sed -n 's/^__version__ = "\(.*\)"$$/\1/p' worker/pids/__init__.py)" && \
	sed -i -E "s/^version: .*/version: $$v/; s/^appVersion: .*/appVersion: \"$$v\"/" charts/*/Chart.yaml && \
	sed -i -E "s/^PIDS_VERSION=.*/PIDS_VERSION=$$v/" $(E2E)/versions.sh && \
	sed -i -E "s/^ARG PIDS_VERSION=.*/ARG PIDS_VERSION=$$v/; s/(pids-[a-z-]+):[0-9][A-Za-z0-9.+-]*/\1:$$v/g" \
	  examples/app/Dockerfile $$(find examples -name '*.yaml')

lock:          ## regenerate $(LOCK) from the ranges of pyproject.toml and bench/pyproject.toml, keeping its pins (UPGRADE=1: newest allowed)
	python3 -m pip install -q -c $(LOCK) uv
	printf -- '-e .[dev]\n-e ./bench\n' | $(UV) pip compile - --universal --python-version 3.11 --no-annotate -q \
	  --no-emit-package pids --no-emit-package pids-bench --custom-compile-command "make lock" \
	  $(if $(UPGRADE),--upgrade) -o $(LOCK)
