# Two entry points for a fresh machine: `make up` runs the service, `make test` runs the tests.
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

.PHONY: up test perf
up: $(VENV)/.installed
	$(VENV)/bin/recording-receiver up

test: $(VENV)/.installed
	$(PY) -m pytest

perf: $(VENV)/.installed
	$(PY) -m tests.perf.receiver_bench
