# Two entry points for a fresh machine: `make up` runs the service, `make test` runs the tests.
# Both install from the hash-locked requirements/*.txt, which `make lock` makes from pyproject.toml.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check
UV_VERSION := 0.13.9

# A .venv whose Python is gone or too old (an upgrade, another pyenv) is rebuilt, not failed on
# at every run: the check runs as make reads this file, so it also catches an up-to-date stamp.
ifneq ($(strip $(shell $(PYTHON) requirements/check_python.py --stale $(VENV) 2>/dev/null)),)
$(VENV)/.installed: FORCE
endif

# The service alone: `make up` needs nothing from the test extra.
$(VENV)/.installed: pyproject.toml requirements/service.txt
	@$(PYTHON) requirements/check_python.py $(VENV)
	@echo "==> [1/3] virtualenv $(VENV) ($$($(PYTHON) --version))"
	$(PYTHON) -m venv $(VENV)
	@echo "==> [2/3] the service's locked packages, hashes checked (requirements/service.txt)"
	$(PIP) --require-hashes -r requirements/service.txt
	@echo "==> [3/3] recording-receiver itself, editable"
	$(PIP) -q --no-deps -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements/test.txt
	@echo "==> the test extra's locked packages, hashes checked (requirements/test.txt)"
	$(PIP) --require-hashes -r requirements/test.txt
	touch $@

.PHONY: up test lint perf lock contract FORCE
FORCE:

up: $(VENV)/.installed
	$(VENV)/bin/recording-receiver up

test: $(VENV)/.installed-test
	$(PY) -m pytest

# ruff (lint only, never a reformat) and mypy strict, both configured in pyproject.toml
lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(PY) -m mypy

perf: $(VENV)/.installed-test
	$(PY) -m tests.perf.receiver_bench

# After editing pyproject.toml's dependencies: re-resolve, keeping every pin that still fits.
# `make lock UPGRADE=--upgrade` moves everything to the newest versions the ranges allow.
lock: $(VENV)/.installed
	$(PIP) -q uv==$(UV_VERSION)
	$(VENV)/bin/uv pip compile pyproject.toml $(UPGRADE) --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command 'make lock' -q -o requirements/service.txt
	$(VENV)/bin/uv pip compile pyproject.toml --extra test $(UPGRADE) --universal --python-version 3.11 \
		--generate-hashes --custom-compile-command 'make lock' -q -o requirements/test.txt

# The contract and drift tests against both ends of the pinned ranges of the libraries whose
# internals we lean on (receiver/app/redis_pipe/, workers/runtime/rq_internals/): two throwaway venvs from the
# test lock, then the lowest (low) or the newest (high) release each range in pyproject.toml allows.
# uv builds them (~20 s from a cold cache; pip took 3 minutes per venv), so CI can afford it.
CONTRACT_LIBS := redis rq hiredis
CONTRACT_TESTS := tests/contract/test_job_hash_contract.py tests/contract/test_rq_drift.py tests/unit/receiver/app/test_command_pipe.py \
	tests/unit/receiver/app/test_redis_pipes.py tests/unit/receiver/app/test_enqueue_batching.py
UV := $(VENV)/bin/uv

$(UV): $(VENV)/.installed
	$(PIP) -q uv==$(UV_VERSION)

.venv-contract-%/.installed: requirements/test.txt $(UV)
	@$(PYTHON) requirements/check_python.py .venv-contract-$*
	$(UV) venv -q --allow-existing --python $(PYTHON) .venv-contract-$*
	$(UV) pip install -q --python .venv-contract-$*/bin/python --require-hashes -r requirements/test.txt
	$(UV) pip install -q --python .venv-contract-$*/bin/python --no-deps -e .
	touch $@

contract: .venv-contract-low/.installed .venv-contract-high/.installed
	@for end in low high; do \
		py=.venv-contract-$$end/bin/python; \
		$(UV) pip install -q --python $$py $$($$py requirements/contract_pins.py $$end $(CONTRACT_LIBS)) || exit 1; \
		echo "==> contract tests, $$end end: $$($$py -c 'import sys, importlib.metadata as m; print(*(f"{n}=={m.version(n)}" for n in sys.argv[1:]))' $(CONTRACT_LIBS))"; \
		$$py -m pytest -q $(CONTRACT_TESTS) || exit 1; \
	done
