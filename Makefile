# modelgate: `make serve` runs the gateway on local models; `make test` runs the test suite.
# Both set up everything they need on a fresh machine (venv, pinned deps, embedded models).

PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
UV      := $(VENV)/bin/uv
# Portable llama.cpp build: the default native build dies with SIGILL on other CPUs.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
export HF_HUB_OFFLINE := 1
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: install install-dev models serve serve-cluster test lock check clean

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements/bootstrap.lock

# Hash-locked installs; a stamp per lock file so a changed lock reinstalls.
$(VENV)/.runtime-installed: requirements/runtime.lock | $(UV)
	$(UV) pip install --quiet --compile-bytecode --python $(PY) --require-hashes -r requirements/runtime.lock
	touch $@

$(VENV)/.dev-installed: requirements/dev.lock | $(UV)
	$(UV) pip install --quiet --compile-bytecode --python $(PY) --require-hashes -r requirements/dev.lock
	touch $@

install: $(VENV)/.runtime-installed
install-dev: $(VENV)/.dev-installed

models: install
	$(PY) -m scripts.fetch_models

serve: install models
	$(PY) -m scripts.serve

# Two replicas (ports 4000, 4010) sharing Redis and a PostgreSQL ledger: docs/scale-out.md.
serve-cluster: install models
	$(PY) -m scripts.serve_cluster

check: install
	$(PY) -m gateway config check

test: install-dev models
	$(PY) -m pytest --cov --cov-report=term-missing:skip-covered --cov-fail-under=80 $(PYTEST_ARGS)

# Re-resolve the pins (needs the registry); commit the .lock files it writes.
lock: | $(UV)
	$(UV) pip compile -q --generate-hashes --python-version 3.11 requirements/bootstrap.in -o requirements/bootstrap.lock
	$(UV) pip compile -q --generate-hashes --python-version 3.11 requirements/runtime.in -o requirements/runtime.lock
	$(UV) pip compile -q --generate-hashes --python-version 3.11 requirements/dev.in -o requirements/dev.lock

clean:
	rm -rf $(VENV) .pytest-logs .coverage* htmlcov
