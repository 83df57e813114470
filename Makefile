# modelarts-operator: every target sets up what it needs (the venv) first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
# apt-get (Redis for the Argo CD sync test) needs root: sudo unless make runs as root.
SUDO   := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help venv kube argocd-health argocd test test-fast bench lint demo local-up local-down crds clean

help:
	@echo "make demo   - run the MNIST pipeline through the operator on the local stack"
	@echo "make test   - set up the venv and run every test"
	@echo "make bench  - run the benchmarks, write bench/results/*.json and docs/benchmarks.md"
	@echo "make lint   - ruff, then the import contracts (lint-imports, .importlinter)"
	@echo "make venv   - create .venv with all extras"
	@echo "make kube   - build etcd, kube-apiserver and kube-controller-manager from source (tools/kube/)"
	@echo "make argocd-health - run the Argo CD health checks in Argo CD's own Lua engine (tools/argocd-health/)"
	@echo "make argocd - build Argo CD's application controller and repo server (tools/argocd/), install redis-server"
	@echo "make crds   - regenerate crds/, docs/api.md and the Argo CD health checks from the API types"
	@echo "make local-up / local-down - start / stop the local stack with the operator"

venv: $(STAMP)

# pip is upgraded first: the image's pip 23 backtracks for half an hour on this dependency set.
$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# The real control plane: built once per version into ~/.cache (a second run does nothing).
kube:
	bash tools/kube/build.sh

# The Argo CD health checks of manifests/argocd/, each health_test.yaml case in Argo CD's own Lua engine
# (tools/argocd-health/, built once per version into ~/.cache like `make kube`; docs/argocd.md).
argocd-health:
	bash tools/argocd-health/build.sh
	"$$(bash tools/argocd-health/build.sh path)" manifests/argocd

# Argo CD's application controller and repo server for the real sync test (tests/operator/test_argocd_sync.py),
# built once per version into ~/.cache like `make kube` (tools/argocd/), and Redis from Debian's redis-server.
argocd:
	bash tools/argocd/build.sh
	command -v redis-server >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq redis-server; }

# Every test, on both Kubernetes backends (the emulator and the real control plane).
test: $(STAMP) kube argocd argocd-health
	$(PY) -m pytest -ra $(PYTEST_ARGS)

# Everything but the tests that train or serve TensorFlow models.
test-fast: $(STAMP)
	$(PY) -m pytest -ra -m "not slow" $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m bench

# ruff, then the import contracts of .importlinter (docs/architecture.md).
lint: $(STAMP)
	$(VENV)/bin/ruff check operator tests model_code bench
	$(VENV)/bin/lint-imports

# KEEP=1 leaves the stack and the resources running, and prints what to try next.
demo: $(STAMP)
	$(VENV)/bin/modelarts-operator demo $(if $(KEEP),--keep)

local-up: $(STAMP)
	$(VENV)/bin/modelarts-operator local up

local-down: $(STAMP)
	$(VENV)/bin/modelarts-operator local down

# Regenerate crds/ and docs/api.md from the Pydantic API types, and the Argo CD health checks of
# manifests/argocd/ from the condition reasons (tests fail when they are stale).
crds: $(STAMP)
	$(PY) -m modelarts_operator.api.generate crds docs/api.md
	$(PY) -m modelarts_operator.api.health manifests/argocd

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
